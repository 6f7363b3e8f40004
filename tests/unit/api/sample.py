"""A fully populated management status dict, as the daemon would return it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


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
        "last_apply_seconds": 0.012, "conntrack_cut": 40, "bulk_slices": 9, "urgent_first": 2,
        "garden": {"static": 4, "domains": {
            "pay.example.net": {"addresses": 3, "expires_in": 120, "error": None},
            "bank.example": {"addresses": 0, "expires_in": 0, "error": "SERVFAIL"}}},
        "radius": {"bras-1": {"sent": 100, "ack": 95, "nak": {"session-not-found": 3},
                              "timeouts": 2, "latency_avg_ms": 20.0, "queue_depth": 0,
                              "eta_s": 0}},
        "portal": {"views": 500, "acks": 40, "errors": 2}, "overrides": 1,
        "guard": {"holding": False, "held_restrictions": 0, "threshold_percent": 5.0,
                  "threshold_count": 200, "since": None},
        "degraded": {"radius:bras-2": "no answer for 60 s"},
    }
