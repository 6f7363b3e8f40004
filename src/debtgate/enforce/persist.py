"""The last applied state, persisted (fail-safe restarts): a base document and a journal.

After a reboot the kernel table is empty; the daemon restores this state before billing
answers (unless the operator chose fail-open), so a debtor is not let through by a power
cut. Two files in the state directory:

* ``applied.json``, the base: every enforcement set and every restricted subscriber,
  written whole and atomically (temp file, fsync, rename) after bulk work (a snapshot, a
  storm) and when the journal has grown past :data:`JOURNAL_MAX`;
* ``applied.journal``, what small changes (a payment, a block) did since: a header line
  naming the base's generation, then one JSON line per change (the set elements added
  and deleted, the restricted subscribers put and the accounts dropped), appended and
  fsynced within :data:`APPEND_PAUSE`. A journal of another generation (a crash between
  the two writes) is ignored: the base covers it; a torn last line is ignored too.

Why: at 1,000,000 subscribers (100,000 restricted) rewriting the 23 MB base after every
payment kept the event loop busy ~70 ms a second in steps, and a payment meeting it
waited: quiet payments p99 71.5 ms, max 106 ms; with the journal p99 6.5 ms (the same
figure as with persistence off; docs/BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from debtgate.enforce.overrides import write_atomic_bytes
from debtgate.model import Subscriber

log = logging.getLogger(__name__)


def subscriber_row(sub: Subscriber) -> dict[str, Any]:
    row: dict[str, Any] = {
        "account": sub.account, "addresses": list(sub.addresses), "state": sub.state.value,
        "amount_due": str(sub.amount_due), "currency": sub.currency,
        "since": sub.since.isoformat() if sub.since else None,
        "block_at": sub.block_at.isoformat() if sub.block_at else None,
        "name": sub.name, "language": sub.language, "tariff": sub.tariff,
    }
    if sub.session is not None:
        row.update(nas=sub.session.nas, session_id=sub.session.session_id,
                   user_name=sub.session.user_name)
    return row


DEFER_MAX = 10.0
"""Seconds a rewrite of the base may wait for a bulk job to end (the state a reboot would
restore is at most this much older than the kernel's during a long job)."""

ENCODE_CHUNK = 2_000
"""Subscribers encoded per step on the event loop when the base is written (msgspec holds
the interpreter lock while it encodes, in a thread too: ~1 ms a step)."""

JOURNAL_MAX = 8 << 20
"""Bytes of journal after which the next write is a new base (~20,000 payments; replaying
that many at a start takes ~0.1 s)."""

APPEND_PAUSE = 0.1
"""Seconds between two appends to the journal (changes meanwhile go in one write)."""

REWRITE_PAUSE = 1.0
"""Seconds after a rewrite of the base before the next write."""


class Change(msgspec.Struct, omit_defaults=True):
    """One small applied change: a line of the journal."""

    add: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Elements added to enforcement sets, by set."""
    delete: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Elements deleted from enforcement sets, by set."""
    put: list[Subscriber] = msgspec.field(default_factory=list)
    """Restricted subscribers as they are now."""
    drop: list[str] = msgspec.field(default_factory=list)
    """Accounts no longer restricted (or gone)."""


class JournalHead(msgspec.Struct):
    """The journal's first line: the base generation its changes follow."""

    base: int


class StateFile:
    """The applied state on disk (the module's docstring says how). The base: the event
    loop copies references (a few ms for 100,000 restricted accounts) and encodes them
    with msgspec in steps of :data:`ENCODE_CHUNK`, free between steps; the write and its
    fsync run in a thread. A small change: :meth:`record` keeps its :class:`Change`, the
    writer task appends it to the journal in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal = path.with_suffix(".journal")
        self._dirty = asyncio.Event()
        self._snapshot: tuple[dict[str, list[str]], list[Subscriber]] | None = None
        self._pending: list[Change] = []
        self._rewrite = True  # the first write of a process is a base: nothing to append to
        self._journal_size = 0
        self.generation = 0
        self.writes = 0
        self.appends = 0

    def mark(self) -> None:
        """Much may have changed (bulk work): the writer task writes a new base, after the
        bulk job or within :data:`DEFER_MAX`."""
        self._rewrite = True
        self._dirty.set()

    def record(self, change: Change) -> None:
        """A small change was applied: the writer task appends it to the journal."""
        self._pending.append(change)
        self._dirty.set()

    def take(self, sets: Mapping[str, set[str]], subs: Iterable[Subscriber]) -> None:
        """Copy the state to persist (on the event loop, so nothing moves meanwhile):
        references only; the subscribers are immutable. The changes recorded until now
        are in it."""
        self._snapshot = ({k: list(v) for k, v in sets.items()}, list(subs))
        self._pending.clear()

    def _parts(self, generation: int) -> Iterator[bytes]:
        """The document, piece by piece: the same bytes as encoding it whole."""
        assert self._snapshot is not None
        sets, subs = self._snapshot
        yield (b'{"version":1,"generation":%d,"sets":' % generation
               + _ENCODER.encode(sets) + b',"subscribers":[')
        for at in range(0, len(subs), ENCODE_CHUNK):
            yield (b"," if at else b"") + _ENCODER.encode(subs[at:at + ENCODE_CHUNK])[1:-1]
        yield b"]}"

    def save_now(self) -> None:
        """Encode and write a base at once (blocking; the writer task uses :meth:`save`)."""
        if self._snapshot is not None:
            self._write(b"".join(self._parts(self.generation + 1)))

    async def save(self) -> None:
        """Encode a base on the loop in steps, then write it in a thread."""
        if self._snapshot is None:
            return
        parts = []
        for part in self._parts(self.generation + 1):
            parts.append(part)
            await asyncio.sleep(0)
        await asyncio.to_thread(self._write, b"".join(parts))

    def _write(self, data: bytes) -> None:
        """The base, then an empty journal following it (a crash between the two leaves
        a journal of the older generation: ignored)."""
        write_atomic_bytes(self.path, data)
        self.generation += 1
        self._snapshot = None  # its lists are not kept between writes
        head = _ENCODER.encode(JournalHead(self.generation)) + b"\n"
        write_atomic_bytes(self.journal, head)
        self._journal_size = len(head)
        self.writes += 1

    def _append(self, data: bytes) -> None:
        with open(self.journal, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self._journal_size += len(data)
        self.appends += 1

    async def run(self, collect: Callable[[], None], idle: asyncio.Event | None = None
                  ) -> None:
        """Write what changed: a small change appended within :data:`APPEND_PAUSE`; a new
        base (``collect`` calls :meth:`take`) after bulk work or a long journal, at most
        once a second. Until ``idle`` is set (no bulk job: a storm, a snapshot) a new base
        waits for it, at most :data:`DEFER_MAX` seconds: one write after a storm instead
        of one per second of it, each encoding every restricted subscriber."""
        while True:
            await self._dirty.wait()
            rewrite = self._rewrite or self._journal_size > JOURNAL_MAX
            if rewrite and idle is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle.wait(), DEFER_MAX)
            self._dirty.clear()
            try:
                if rewrite:
                    self._rewrite = False
                    collect()
                    await self.save()
                elif self._pending:
                    changes, self._pending = self._pending, []
                    await asyncio.to_thread(
                        self._append, b"".join(_ENCODER.encode(c) + b"\n" for c in changes))
            except OSError as exc:
                self._rewrite = True  # what was not written is in the next base
                log.error("cannot persist the applied state to %s: %s", self.path, exc)
            await asyncio.sleep(REWRITE_PAUSE if rewrite else APPEND_PAUSE)

    def load(self) -> Saved | None:
        """The base decoded into its types by msgspec (the subscribers as written: they
        were validated before they were applied), with the journal's changes applied. At
        100,000 restricted accounts ~0.2 s, against ~1.3 s through ``json`` and the
        billing row validator. A base that does not decode (torn, edited, another layout)
        is logged and ignored; so is a journal of another generation, and the journal
        from a line that does not decode (a torn append) on."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("persisted state %s unreadable: %s", self.path, exc)
            return None
        try:
            saved = _DECODER.decode(data)
        except msgspec.DecodeError as exc:
            log.error("persisted state %s unreadable: %s", self.path, exc)
            return None
        self.generation = saved.generation
        self._replay(saved)
        return saved

    def _replay(self, saved: Saved) -> None:
        try:
            lines = self.journal.read_bytes().split(b"\n")
            head = _HEAD.decode(lines[0])
        except (OSError, msgspec.DecodeError):
            return  # none (an older daemon's state), or unreadable: the base alone
        if head.base != saved.generation:
            log.info("persisted journal %s follows generation %d, the base is %d: ignored",
                     self.journal, head.base, saved.generation)
            return
        subs = {s.account: s for s in saved.subscribers}
        count = 0
        for line in filter(None, lines[1:]):
            try:
                change = _CHANGE.decode(line)
            except msgspec.DecodeError as exc:
                log.warning("persisted journal %s: change %d unreadable (a torn write?), "
                            "it and any after it ignored: %s", self.journal, count + 1, exc)
                break
            for name, elems in change.delete.items():
                saved.sets.setdefault(name, set()).difference_update(elems)
            for name, elems in change.add.items():
                saved.sets.setdefault(name, set()).update(elems)
            for account in change.drop:
                subs.pop(account, None)
            subs.update((s.account, s) for s in change.put)
            count += 1
        if count:
            saved.subscribers = list(subs.values())
            log.info("persisted journal: %d changes applied to the base", count)


class Saved(msgspec.Struct):
    """The persisted base: ``{"version": 1, "generation": G, "sets": ..., "subscribers":
    [...]}``."""

    version: int
    sets: dict[str, set[str]]
    """Every enforcement set's elements as the kernel held them."""
    subscribers: list[Subscriber]
    """The restricted subscribers (what the portal's page shows)."""
    generation: int = 0
    """Which base this is: the journal names the one it follows (0: an older daemon's)."""


_DECODER = msgspec.json.Decoder(Saved)
_HEAD = msgspec.json.Decoder(JournalHead)
_CHANGE = msgspec.json.Decoder(Change)
_ENCODER = msgspec.json.Encoder()
