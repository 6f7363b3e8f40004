"""The contract between billing sources and the engine."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

Row = Mapping[str, Any]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (bulk work that creates many objects).

    At a million subscribers a full collection walks every tracked object the daemon
    holds; creating 100,000 subscribers triggers several of them (measured: two thirds
    of a 100,000-account delta). Nothing we build in bulk is cyclic (reference counting
    frees it); the collector runs again after the block. Nested use keeps it off."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def release_memory() -> None:
    """Return freed heap pages to the system (glibc ``malloc_trim``; a no-op elsewhere):
    after bulk work, so the daemon's resident memory follows what it holds."""
    global _TRIM  # noqa: PLW0603 - resolved once
    if _TRIM is None:
        try:
            import ctypes  # noqa: PLC0415

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every subscriber the billing knows: accounts absent from it are gone."""

    rows: Sequence[Row]


@dataclass(frozen=True, slots=True)
class Delta:
    """Some accounts changed: their current rows, and the accounts that vanished."""

    rows: Sequence[Row]
    gone: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Restrictions:
    """The restricting rows of a snapshot still on its way (a cold start).

    A source may send it before the first :class:`Snapshot` so that a gateway that
    starts with nothing enforced restricts the debtors first and learns the other
    accounts after. The engine only ever *adds* from it, only while it has no baseline
    (nothing enforced, nothing placed), and leaves every decision (releases, the guard,
    the inventory, transitions, rejections) to the snapshot that must follow."""

    rows: Sequence[Row]


class Columns(Sequence[Row]):
    """A snapshot held in columns: compact at a million rows.

    ``account``, ``addresses`` and ``state`` hold every row's text (``None`` for
    NULL); ``marks`` each row's change mark (version or fingerprint, or None);
    ``extra`` holds the other contract columns (``extra_names``) only for the
    rows that carry them (the non-active ones), keyed by row index. Reading an
    item builds that row as a dict, so the object still works as a list of rows.
    """

    __slots__ = ("account", "addresses", "extra", "extra_names", "marks", "state")

    def __init__(self, extra_names: Sequence[str] = ()) -> None:
        self.account: list[str | None] = []
        self.addresses: list[str | None] = []
        self.state: list[str | None] = []
        self.marks: list[int | None] = []
        self.extra_names: tuple[str, ...] = tuple(extra_names)
        self.extra: dict[int, tuple[str | None, ...]] = {}

    def __len__(self) -> int:
        return len(self.account)

    def row(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {"account": self.account[index],
                               "addresses": self.addresses[index],
                               "state": self.state[index]}
        extra = self.extra.get(index)
        if extra is not None:
            out.update(zip(self.extra_names, extra, strict=False))
        return out

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | Sequence[Row]:
        if isinstance(index, slice):
            return [self.row(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.row(index)


Event = Snapshot | Delta | Restrictions
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
