"""The contract between billing sources and the engine."""

from __future__ import annotations

import logging
import operator
import time
from array import array
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableSequence,
    Sequence,
)
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any, Protocol, overload

log = logging.getLogger(__name__)

Row = Mapping[str, Any]


class Refused(str):
    """A row a source could not read, held in its ``state`` cell: validation rejects
    the row with ``reason`` and ``detail`` (the account, when readable, keeps its
    last good version, as for any rejection). Text, so columns stay typed; never
    equal to a state."""

    reason: str
    detail: str

    def __new__(cls, reason: str, detail: str) -> Refused:
        self = super().__new__(cls, "\x00refused")
        self.reason = reason
        self.detail = detail
        return self


def _now() -> int:
    return time.monotonic_ns()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every subscriber the billing knows: accounts absent from it are gone."""

    rows: Sequence[Row]
    seq: int = field(default_factory=_now)
    """When the rows were read (``time.monotonic_ns()`` as the fetch began): of two
    events about one account, the one read later wins, whichever the engine applies
    first (:attr:`~debtgate.enforce.engine.Engine.fresh`)."""


@dataclass(frozen=True, slots=True)
class Delta:
    """Some accounts changed: their current rows, and the accounts that vanished."""

    rows: Sequence[Row]
    gone: Sequence[str] = ()
    seq: int = field(default_factory=_now)
    """When the rows were read (see :attr:`Snapshot.seq`)."""


NO_MARK = -(2**63)
"""A missing change mark inside a :class:`MarkColumn`."""


class MarkColumn(Sequence[int | None]):
    """Change marks (64-bit, or None) held in one ``array``: no int object per row.

    A million marks parsed into a list would leave a million small objects behind,
    spread among the snapshot's long-lived texts: freed once the source has copied
    them, their memory stays with the process (measured: ~30 MB at rest at 1M)."""

    __slots__ = ("raw",)

    def __init__(self, marks: Iterable[int | None] = ()) -> None:
        self.raw = array("q", [NO_MARK if m is None else m for m in marks])

    @classmethod
    def of(cls, raw: array[int]) -> MarkColumn:
        """A column over ``raw`` (not copied)."""
        out = cls()
        out.raw = raw
        return out

    def append(self, mark: int | None) -> None:
        self.raw.append(NO_MARK if mark is None else mark)

    @overload
    def __getitem__(self, index: int) -> int | None: ...
    @overload
    def __getitem__(self, index: slice) -> MarkColumn: ...
    def __getitem__(self, index: int | slice) -> int | None | MarkColumn:
        if isinstance(index, slice):
            return MarkColumn.of(self.raw[index])
        mark = self.raw[index]
        return None if mark == NO_MARK else mark

    def __iter__(self) -> Iterator[int | None]:
        for mark in self.raw:
            yield None if mark == NO_MARK else mark

    def __len__(self) -> int:
        return len(self.raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MarkColumn):
            return self.raw == other.raw
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Columns(Sequence[Row]):
    """A snapshot held in columns: compact at a million rows.

    ``account``, ``addresses`` and ``state`` hold every row's text (``None`` for
    NULL); ``marks`` each row's change mark (version or fingerprint, or None). The
    other contract columns (``extra_names``) are held either sparse, in ``extra``:
    a tuple only for the rows that carry some (the non-active ones), keyed by row
    index (the PostgreSQL feed); or dense, in ``dense``: one full column per name
    (a decoded file, where transposing rows into tuples would cost more than the
    columns themselves). ``extra`` is derived from ``dense`` when first read.
    Reading an item builds that row as a dict, so the object still works as a list
    of rows.
    """

    __slots__ = ("_extra", "account", "addresses", "dense", "extra_names", "lines", "marks",
                 "state", "typed_texts")

    def __init__(self, extra_names: Sequence[str] = ()) -> None:
        self.account: list[str | None] = []
        self.addresses: list[str | None] = []
        self.state: list[str | None] = []
        self.marks: MutableSequence[int | None] | MarkColumn = []
        self.extra_names: tuple[str, ...] = tuple(extra_names)
        self._extra: dict[int, tuple[Any, ...]] | None = {}
        self.dense: Mapping[str, list[Any]] | None = None
        self.typed_texts = False
        """The display columns (currency, name, language, tariff) hold only text or
        NULL (a typed decoder checked them)."""
        self.lines: list[int] | str | None = None
        """Where each row stands in its file, for rejection messages: the CSV line of
        each record, or ``"row"`` for a JSON list (the row's place, counted from 1);
        None when the rows have no place (a database)."""

    def locate(self, account: str, last: bool = False) -> str | None:
        """``line N`` / ``row N`` of the (first, or ``last``) row of an account."""
        if self.lines is None:
            return None
        try:
            if last:
                index = len(self.account) - 1 - self.account[::-1].index(account)
            else:
                index = self.account.index(account)
        except ValueError:
            return None
        if isinstance(self.lines, str):
            return f"{self.lines} {index + 1}"
        return f"line {self.lines[index]}" if index < len(self.lines) else None

    @property
    def extra(self) -> dict[int, tuple[Any, ...]]:
        """Row index -> that row's extra values (``extra_names`` order), for the rows
        with some value that is not NULL."""
        if self._extra is None:
            dense = self.dense or {}
            cols = [dense.get(name) or [None] * len(self) for name in self.extra_names]
            blank = (None,) * len(cols)
            self._extra = {i: values for i, values in enumerate(zip(*cols, strict=True))
                           if values != blank}
        return self._extra

    @extra.setter
    def extra(self, value: dict[int, tuple[Any, ...]]) -> None:
        self._extra = value
        self.dense = None

    def set_dense(self, columns: Mapping[str, list[Any]]) -> None:
        """Hold the extra columns dense (each as long as ``account``)."""
        self.dense = columns
        self._extra = None

    def extra_column(self, name: str, indices: Sequence[int]) -> list[Any] | None:
        """The values of extra column ``name`` at ``indices`` (distinct, ascending), None
        where NULL; None for a column that no row carries."""
        dense = self.dense
        if dense is not None:
            column = dense.get(name)
            if column is None or column.count(None) == len(column):
                return None
            if len(indices) == len(column):  # every row
                return column
            return list(map(column.__getitem__, indices))
        try:
            at = self.extra_names.index(name)
        except ValueError:
            return None
        blank = (None,) * len(self.extra_names)
        return [row[at] for row in map(self.extra.get, indices, repeat(blank))]

    def pick(self, indices: Sequence[int]) -> Columns:
        """The rows at ``indices`` (ascending) as new columns."""
        out = Columns(self.extra_names)
        out.typed_texts = self.typed_texts
        if isinstance(indices, range) and indices.step == 1:  # a run of rows: slices
            run = slice(indices.start, indices.stop)
            out.account, out.addresses = self.account[run], self.addresses[run]
            out.state = self.state[run]
            out.marks = self.marks[run]  # a list, or a MarkColumn over the array's slice
            if self.dense is not None:
                out.set_dense({name: column[run] for name, column in self.dense.items()})
                return out
        else:
            out.account = list(map(self.account.__getitem__, indices))
            out.addresses = list(map(self.addresses.__getitem__, indices))
            out.state = list(map(self.state.__getitem__, indices))
            out.marks = list(map(self.marks.__getitem__, indices))
        if self.dense is not None:
            out.set_dense({name: list(map(column.__getitem__, indices))
                           for name, column in self.dense.items()})
        else:
            extra = self.extra
            out.extra = {new: extra[old] for new, old in enumerate(indices) if old in extra}
        return out

    def with_extra(self) -> list[int]:
        """Indices of the rows with some extra value, ascending."""
        dense = self.dense
        if dense is None:
            return sorted(self.extra)
        marked: set[int] = set()
        for column in dense.values():
            if column.count(None) != len(column):
                marked.update(compress(range(len(column)),
                                       map(operator.is_not, column, repeat(None))))
        return sorted(marked)

    def __len__(self) -> int:
        return len(self.account)

    def row(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {"account": self.account[index],
                               "addresses": self.addresses[index],
                               "state": self.state[index]}
        dense = self.dense
        if dense is not None:
            values = [(name, column[index]) for name, column in dense.items()]
            if any(value is not None for _, value in values):
                out.update(values)
            return out
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


class LazyColumns(Mapping[str, list[Any]]):
    """Columns read from row objects (one attribute per name) when first asked for."""

    def __init__(self, rows: Sequence[Any], names: Sequence[str]) -> None:
        self._rows = rows
        self._names = tuple(names)
        self._got: dict[str, list[Any]] = {}

    def __getitem__(self, name: str) -> list[Any]:
        column = self._got.get(name)
        if column is None:
            if name not in self._names:
                raise KeyError(name)
            column = self._got[name] = list(map(operator.attrgetter(name), self._rows))
        return column

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


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
    listening: bool = False
    """A change in the billing (a payment) reaches the engine as it happens: the
    PostgreSQL feed LISTENs and its lane serves small changes, during a snapshot too;
    a file source once it has read the file."""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": self.connected, "listening": self.listening,
                "last_snapshot": self.last_snapshot, "last_event": self.last_event,
                "last_error": self.last_error, "lag": self.lag, **self.extra}


Urgent = Callable[[bool], None]
"""Told ``True`` when a small change (a payment) is on its way from the billing and
``False`` when it has been handed over: bulk work waits meanwhile
(:meth:`debtgate.enforce.turn.Turn.hold`)."""


def no_urgent(_on: bool) -> None:
    """A source's default :data:`Urgent`: nobody to tell."""


class BillingSource(Protocol):
    health: SourceHealth

    async def run(self, sink: Sink, urgent: Urgent = no_urgent) -> None:
        """Feed the sink until cancelled: a Snapshot first, then Deltas or Snapshots;
        ``urgent`` is told when a small change is on its way."""
        ...

    def request_resync(self, full: bool = False) -> None:
        """Ask for a resync soon (periodic reconcile, POST /resync); ``full`` re-checks
        every row even if unchanged (after a policy change)."""
        ...

    def prefer_restricted(self) -> None:
        """The kernel enforces nothing (a first start): if the source can, the rows
        that are not active reach the engine before the rest of the first snapshot."""
        ...
