"""gc_paused: no cyclic collection inside; what a large block still holds afterwards goes
to the oldest generation, not through the young ones (pure interpreter state)."""

from __future__ import annotations

import gc

from debtgate.billing.memory import PROMOTE_AFTER, gc_paused


def _generation_of(obj: object) -> int | None:
    for generation in (0, 1, 2):
        if any(o is obj for o in gc.get_objects(generation=generation)):
            return generation
    return None


def test_the_survivors_of_a_large_block_go_to_the_oldest_generation() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        held = [[i] for i in range(PROMOTE_AFTER + 10_000)]  # tracked objects
    assert gc.isenabled()
    assert _generation_of(held[-1]) == 2 and _generation_of(held) == 2
    assert gc.get_count()[0] < PROMOTE_AFTER  # the young generation starts afresh


def test_a_small_block_leaves_its_objects_young() -> None:
    gc.collect()
    with gc_paused():
        held = [[i] for i in range(100)]
    assert _generation_of(held[-1]) == 0


def test_nested_use_keeps_the_collector_off() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
