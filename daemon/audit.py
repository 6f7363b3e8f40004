"""The audit trail: one structured JSON line per transition and its cause.

Lines go to the ``debtgate.audit`` logger; the daemon's log handler writes
them to stdout (journald keeps them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("debtgate.audit")
SINKS: list[Callable[[str, dict[str, Any]], None]] = []
"""Further destinations (the shared ``debtgate.audit`` table with the PostgreSQL source)."""


def audit(event: str, **fields: Any) -> None:
    if _log.isEnabledFor(logging.INFO):
        _log.info("%s", json.dumps({"audit": event, **fields}, default=str, sort_keys=True))
    for sink in SINKS:
        sink(event, fields)
