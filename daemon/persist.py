"""The last applied state, persisted atomically (fail-safe restarts).

After a reboot the kernel table is empty; the daemon restores this state
before billing answers (unless the operator chose fail-open), so a debtor is
not let through by a power cut. Writes are debounced: at most one per second,
always the latest state, always atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from .model import Subscriber
from .overrides import write_atomic_bytes

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
"""Seconds a write may wait for a bulk job to end (the state a reboot would restore is
at most this much older than the kernel's during a long job)."""

ENCODE_CHUNK = 5_000
"""Subscribers encoded per step on the event loop (msgspec holds the interpreter lock
while it encodes, in a thread too: ~2 ms a step)."""


class StateFile:
    """The applied state on disk. The event loop copies references (a few ms for
    100,000 restricted accounts) and encodes them with msgspec in steps of
    :data:`ENCODE_CHUNK`, free between steps; the write and its fsync run in a thread.
    Encoding the whole state at once, even in a thread (msgspec keeps the interpreter
    lock), held the loop for ~0.1 s at 100,000 restricted: at 1,000,000 subscribers one
    quiet payment in fifty met it (p99 112 ms, docs/BENCHMARKS.md). Before that, row
    dicts and ``json.dumps`` held it for half a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._dirty = asyncio.Event()
        self._snapshot: tuple[dict[str, list[str]], list[Subscriber]] | None = None
        self.writes = 0

    def mark(self) -> None:
        """The applied state changed: the writer task saves it within a second."""
        self._dirty.set()

    def take(self, sets: Mapping[str, set[str]], subs: Iterable[Subscriber]) -> None:
        """Copy the state to persist (on the event loop, so nothing moves meanwhile):
        references only; the subscribers are immutable."""
        self._snapshot = ({k: list(v) for k, v in sets.items()}, list(subs))

    def _parts(self) -> Iterator[bytes]:
        """The document, piece by piece: the same bytes as encoding it whole."""
        assert self._snapshot is not None
        sets, subs = self._snapshot
        yield b'{"version":1,"sets":' + _ENCODER.encode(sets) + b',"subscribers":['
        for at in range(0, len(subs), ENCODE_CHUNK):
            yield (b"," if at else b"") + _ENCODER.encode(subs[at:at + ENCODE_CHUNK])[1:-1]
        yield b"]}"

    def save_now(self) -> None:
        """Encode and write at once (blocking; the writer task uses :meth:`save`)."""
        if self._snapshot is not None:
            self._write(b"".join(self._parts()))

    async def save(self) -> None:
        """Encode on the loop in steps, then write in a thread."""
        if self._snapshot is None:
            return
        parts = []
        for part in self._parts():
            parts.append(part)
            await asyncio.sleep(0)
        await asyncio.to_thread(self._write, b"".join(parts))

    def _write(self, data: bytes) -> None:
        write_atomic_bytes(self.path, data)
        self._snapshot = None  # its lists are not kept between writes
        self.writes += 1

    async def run(self, collect: Callable[[], None], idle: asyncio.Event | None = None
                  ) -> None:
        """Write the latest state at most once a second; ``collect`` calls :meth:`take`.
        Until ``idle`` is set (no bulk job: a storm, a snapshot) the write waits for it,
        at most :data:`DEFER_MAX` seconds: one write after a storm instead of one per
        second of it, each encoding every restricted subscriber (~10 % of a 100,000
        account storm's loop at 1,000,000 subscribers)."""
        while True:
            await self._dirty.wait()
            if idle is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(idle.wait(), DEFER_MAX)
            self._dirty.clear()
            collect()
            try:
                await self.save()
            except OSError as exc:
                log.error("cannot persist the applied state to %s: %s", self.path, exc)
            await asyncio.sleep(1.0)

    def load(self) -> Saved | None:
        """The document decoded into its types by msgspec (the subscribers as written:
        they were validated before they were applied). At 100,000 restricted accounts
        ~0.2 s, against ~1.3 s through ``json`` and the billing row validator. A file
        that does not decode (torn, edited, another layout) is logged and ignored."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("persisted state %s unreadable: %s", self.path, exc)
            return None
        try:
            return _DECODER.decode(data)
        except msgspec.DecodeError as exc:
            log.error("persisted state %s unreadable: %s", self.path, exc)
            return None


class Saved(msgspec.Struct):
    """The persisted document: ``{"version": 1, "sets": ..., "subscribers": [...]}``."""

    version: int
    sets: dict[str, set[str]]
    """Every enforcement set's elements as the kernel held them."""
    subscribers: list[Subscriber]
    """The restricted subscribers (what the portal's page shows)."""


_DECODER = msgspec.json.Decoder(Saved)


_ENCODER = msgspec.json.Encoder()
