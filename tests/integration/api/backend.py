"""An in-memory ManagementBackend for the management API tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from ...unit.api.sample import sample_status

SUBSCRIBERS: dict[str, dict[str, Any]] = {
    "ACC0001": {"account": "ACC0001", "state": "active", "addresses": ["100.64.0.1"]},
    "ACC0002": {"account": "ACC0002", "state": "blocked",
                "addresses": ["100.64.0.2", "2001:db8::2"]},
}


class MemoryBackend:
    """What the daemon would answer, from dicts."""

    def __init__(self) -> None:
        self.is_ready = (True, "synced")
        self.overrides: dict[str, dict[str, Any]] = {}
        self.resyncs = 0
        self.resync_error: Exception | None = None
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
        if self.resync_error is not None:
            raise self.resync_error
        self.resyncs += 1

    async def approve_guard(self, author: str) -> dict[str, Any]:
        if not self.guard_holding:
            raise ValueError("the guard is not holding anything")
        released, self.guard_holding = self.guard_holding, 0
        self.authors.append(author)
        return {"approved": True, "released": released, "author": author}
