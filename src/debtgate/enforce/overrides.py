"""Manual overrides: restrict or release an account, with a reason and an expiry.

Overrides survive restarts: the file store keeps them in ``state_dir`` (the
PostgreSQL store, shared by every gateway on one billing, lives in the
``debtgate`` schema). Every change is audited.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from debtgate.model import State

log = logging.getLogger(__name__)
ACTIONS = ("restrict", "release")


@dataclass(frozen=True, slots=True)
class Override:
    id: str
    account: str
    action: str
    reason: str
    created_at: datetime
    expires_at: datetime | None
    author: str

    def active(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now

    @property
    def state(self) -> State:
        return State.DISABLED if self.action == "restrict" else State.ACTIVE

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Override:
        exp = data.get("expires_at")
        return cls(id=str(data["id"]), account=str(data["account"]), action=str(data["action"]),
                   reason=str(data.get("reason", "")),
                   created_at=datetime.fromisoformat(data["created_at"]),
                   expires_at=datetime.fromisoformat(exp) if exp else None,
                   author=str(data.get("author", "")))


def new_override(account: str, action: str, reason: str, now: datetime,
                 expires_at: datetime | None, author: str) -> Override:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    if not account or len(account) > 128:
        raise ValueError("account must be 1-128 characters")
    if not reason.strip():
        raise ValueError("a reason is required")
    if expires_at is not None and expires_at <= now:
        raise ValueError("expires_at is in the past")
    return Override(secrets.token_hex(6), account, action, reason.strip()[:500], now,
                    expires_at, author[:100])


class OverrideStore(Protocol):
    async def load(self) -> list[Override]: ...
    async def save(self, overrides: list[Override]) -> None: ...


class FileOverrideStore:
    """Overrides in a JSON file, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> list[Override]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.error("override file %s unreadable, starting with none: %s", self.path, exc)
            return []
        out = []
        for item in data.get("overrides", []):
            try:
                out.append(Override.from_dict(item))
            except (KeyError, ValueError, TypeError) as exc:
                log.error("override entry skipped in %s: %s", self.path, exc)
        return out

    async def save(self, overrides: list[Override]) -> None:
        write_atomic(self.path, json.dumps({"overrides": [o.as_dict() for o in overrides]},
                                           indent=1))


def write_atomic(path: Path, text: str) -> None:
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
