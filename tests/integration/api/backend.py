"""An in-memory ManagementBackend and a full sample status dict."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import Any

SUBSCRIBERS: dict[str, dict[str, Any]] = {
    "ACC0001": {"account": "ACC0001", "state": "active", "addresses": ["100.64.0.1"]},
    "ACC0002": {"account": "ACC0002", "state": "blocked",
                "addresses": ["100.64.0.2", "2001:db8::2"]},
}


def sample_status() -> dict[str, Any]:
    now = time.time()
    return {
        "version": "0.1.0", "uptime": 93784.5,
        "feed": {"kind": "postgres", "connected": True, "last_snapshot": now - 3600,
                 "last_event": datetime.fromtimestamp(now - 12, UTC).isoformat(), "lag": 0.4,
                 "last_error": None, "rejected": {"bad_address": 3, "address_conflict": 1}},
        "subscribers": {"active": 1200, "warn": 30, "blocked": 12},
        "sets": {"blocked_v4": {"desired": 12, "kernel": 12},
                 "warn_v4": {"desired": 30, "kernel": 29}},
        "drift_repairs": 1, "applies": 1234, "kernel_writes": 5678, "apply_errors": 0,
        "last_apply_seconds": 0.012, "conntrack_cut": 40,
        "garden": {"static": 4, "domains": {
            "pay.example.net": {"addresses": 3, "expires_in": 120, "error": None},
            "bank.example": {"addresses": 0, "expires_in": 0, "error": "SERVFAIL"}}},
        "radius": {"bras-1": {"sent": 100, "ack": 95, "nak": {"session-not-found": 3},
                              "timeouts": 2, "latency_avg": 0.02, "queue_depth": 0,
                              "eta_seconds": 0}},
        "portal": {"views": 500, "acks": 40},
        "guard": {"holding": False, "held_restrictions": 0, "threshold_percent": 5.0,
                  "threshold_count": 200, "since": None},
        "degraded": {"radius:bras-2": "no answer for 60 s"},
    }


class MemoryBackend:
    """What the daemon would answer, from dicts."""

    def __init__(self) -> None:
        self.is_ready = (True, "synced")
        self.overrides: dict[str, dict[str, Any]] = {}
        self.resyncs = 0
        self.guard_holding = 0
        self.authors: list[str] = []
        self._ids = itertools.count(1)

    def health(self) -> dict[str, Any]:
        return {"pid": 1, "uptime": 1.0}

    def ready(self) -> tuple[bool, str]:
        return self.is_ready

    def status(self) -> dict[str, Any]:
        return sample_status()

    def explain(self, key: str) -> dict[str, Any] | None:
        for sub in SUBSCRIBERS.values():
            if key == sub["account"] or key in sub["addresses"]:
                overrides = [o for o in self.overrides.values() if o["account"] == sub["account"]]
                return {**sub, "overrides": overrides,
                        "history": [{"at": "2025-03-01T10:00:00+00:00", "old": "active",
                                     "new": sub["state"], "cause": "billing"}]}
        return None

    def list_overrides(self) -> list[dict[str, Any]]:
        return list(self.overrides.values())

    async def add_override(self, account: str, action: str, reason: str,
                           expires_at: datetime | None, author: str) -> dict[str, Any]:
        if account not in SUBSCRIBERS:
            raise ValueError(f"unknown account {account!r}")
        oid = f"ov{next(self._ids)}"
        self.authors.append(author)
        self.overrides[oid] = {
            "id": oid, "account": account, "action": action, "reason": reason,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "created_at": datetime.now(UTC).isoformat(), "author": author}
        return self.overrides[oid]

    async def delete_override(self, override_id: str, author: str) -> bool:
        self.authors.append(author)
        return self.overrides.pop(override_id, None) is not None

    async def resync(self) -> None:
        self.resyncs += 1

    async def approve_guard(self, author: str) -> dict[str, Any]:
        if not self.guard_holding:
            raise ValueError("the guard is not holding anything")
        released, self.guard_holding = self.guard_holding, 0
        self.authors.append(author)
        return {"approved": True, "released": released, "author": author}
