"""Memory around bulk work: the cyclic collector paused and its survivors promoted, slow
collections logged, freed heap returned to the system.

A million-subscriber daemon spends its pauses here when left alone: a young collection
after a bulk block walked every survivor (50-216 ms, each holding every payment). The
figures are in the docstrings below and in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (bulk work that creates many objects).

    At a million subscribers a full collection walks every tracked object the daemon
    holds; creating 100,000 subscribers triggers several of them (measured: two thirds
    of a 100,000-account delta). Nothing we build in bulk is cyclic (reference counting
    frees it); the collector runs again after the block. Nested use keeps it off.

    What the block allocated and still holds is then moved to the oldest generation
    (:data:`PROMOTE_AFTER`)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if gc.get_count()[0] > PROMOTE_AFTER:
                gc.freeze()  # every tracked object to the permanent generation,
                gc.unfreeze()  # and back into the oldest one: both are list splices
            gc.enable()


PROMOTE_AFTER = 50_000
"""Tracked allocations of a paused block above which its survivors go straight to the
oldest generation. Otherwise the first young collection after the block walked them
all, then the middle one again: 50-216 ms pauses (16 over 50 ms in one product pass at
1,000,000 subscribers), each holding every payment. In the oldest generation they are
walked only by full collections, which a cycle among them still reaches. (Freezing them
for good, ``gc.freeze`` alone, was measured too: such cycles then stay, and the storm's
RSS peak rose 686 -> 922 MB over 14 rounds.)"""


_GC_STARTED: list[float] = []


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    """``gc.callbacks`` hook: a collection that held the interpreter for long is logged
    (it holds every task: a payment waits for it)."""
    if phase == "start":
        _GC_STARTED[:] = [time.perf_counter()]
    elif _GC_STARTED:
        took = time.perf_counter() - _GC_STARTED[0]
        if took > GC_SLOW:
            log.warning("garbage collection of generation %d took %.0f ms (%d collected)",
                        info.get("generation", -1), took * 1000, info.get("collected", 0))


GC_SLOW = 0.05
"""Seconds above which a garbage collection or a ``malloc_trim`` (both hold the event
loop) is logged."""


def watch_gc() -> None:
    """Log slow garbage collections from now on (once per process)."""
    if _gc_timer not in gc.callbacks:
        gc.callbacks.append(_gc_timer)


def release_memory() -> None:
    """Return freed heap pages to the system (glibc ``malloc_trim``; a no-op elsewhere):
    after bulk work, so the daemon's resident memory follows what it holds."""
    global _TRIM  # noqa: PLW0603 - resolved once
    if _TRIM is None:
        try:
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        started = time.perf_counter()
        _TRIM(0)
        took = time.perf_counter() - started
        if took > GC_SLOW:  # it runs on the caller's thread: the event loop, usually
            log.warning("returning freed memory (malloc_trim) took %.0f ms", took * 1000)


_TRIM: Any = None
