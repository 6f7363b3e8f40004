"""The audit trail: one structured JSON line per transition and its cause.

Lines go to the ``debtgate.audit`` logger; the daemon's log handler writes
them to stdout (journald keeps them).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_log = logging.getLogger("debtgate.audit")
SINKS: list[Callable[[str, dict[str, Any]], None]] = []
"""Further destinations (the shared ``debtgate.audit`` table with the PostgreSQL source)."""


def audit(event: str, **fields: Any) -> None:
    if _log.isEnabledFor(logging.INFO):
        _log.info("%s", json.dumps({"audit": event, **fields}, default=str, sort_keys=True))
    for sink in SINKS:
        sink(event, fields)


class AuditFile:
    """Audit lines appended to a local JSON-lines file (``state_dir/audit.jsonl``): the
    shared history of a gateway on the file source. Size-capped with one rotation."""

    def __init__(self, path: Path, max_bytes: int = 50_000_000) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the daemon

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        try:
            self._fh.write(json.dumps({"at": time.time(), "audit": event, **fields},
                                      default=str, sort_keys=True) + "\n")
            self._fh.flush()
            if self._fh.tell() > self.max_bytes:
                self._fh.close()
                os.replace(self.path, self.path.with_suffix(".jsonl.1"))
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            _log.error("cannot write the audit file %s: %s", self.path, exc)

    def close(self) -> None:
        self._fh.close()
