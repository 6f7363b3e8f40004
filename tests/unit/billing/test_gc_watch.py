"""A garbage collection or a malloc_trim that held the event loop for long is logged
(it holds every task, a payment's too)."""

from __future__ import annotations

import gc

import pytest

from debtgate.billing import memory as base


def test_a_slow_collection_is_logged(monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    base.watch_gc()
    base.watch_gc()  # once per process
    try:
        assert gc.callbacks.count(base._gc_timer) == 1
        monkeypatch.setattr(base, "GC_SLOW", -1.0)  # every collection is "slow"
        gc.collect()
        assert "garbage collection of generation 2 took" in caplog.text
        caplog.clear()
        monkeypatch.setattr(base, "GC_SLOW", 60.0)
        gc.collect()
        assert "garbage collection" not in caplog.text
    finally:
        gc.callbacks.remove(base._gc_timer)


def test_a_slow_trim_is_logged(monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(base, "GC_SLOW", -1.0)
    base.release_memory()  # glibc here: malloc_trim runs and is timed
    assert "returning freed memory (malloc_trim) took" in caplog.text
