"""The contract between billing sources and the engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every subscriber the billing knows: accounts absent from it are gone."""

    rows: Sequence[Row]


@dataclass(frozen=True, slots=True)
class Delta:
    """Some accounts changed: their current rows, and the accounts that vanished."""

    rows: Sequence[Row]
    gone: Sequence[str] = ()


Event = Snapshot | Delta
Sink = Callable[[Event], Awaitable[None]]


@dataclass(slots=True)
class SourceHealth:
    """What the status endpoint shows about the feed."""

    kind: str
    connected: bool = False
    last_snapshot: float | None = None
    """Wall-clock time (epoch seconds) of the last good snapshot."""
    last_event: float | None = None
    last_error: str | None = None
    lag: float | None = None
    """Seconds between the billing's change and its application, last seen."""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": self.connected,
                "last_snapshot": self.last_snapshot, "last_event": self.last_event,
                "last_error": self.last_error, "lag": self.lag, **self.extra}


class BillingSource(Protocol):
    health: SourceHealth

    async def run(self, sink: Sink) -> None:
        """Feed the sink until cancelled: a Snapshot first, then Deltas or Snapshots."""
        ...

    def request_resync(self, full: bool = False) -> None:
        """Ask for a resync soon (periodic reconcile, POST /resync); ``full`` re-checks
        every row even if unchanged (after a policy change)."""
        ...
