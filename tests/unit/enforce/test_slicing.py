"""Validation in slices ends where validation of the whole ends."""

from __future__ import annotations

import random

import pytest

from debtgate.billing.rows import Policy
from debtgate.billing.validate import validate_batch
from debtgate.enforce import slicing
from debtgate.enforce.deltas import validate_rows_of
from debtgate.enforce.inventory import Inventory
from debtgate.enforce.turn import Turn
from tests.unit.helpers import columns, row

STATES = ("active", "blocked", "warn", "paused", "nonsense")


def storm(n: int, seed: int) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        state = rnd.choice(STATES)
        extra = {"amount_due": rnd.choice(["10", "x", None])} if state != "active" else {}
        rows.append(row(f"a{i}", f"10.1.{i >> 8 & 255}.{i & 255}", state, **extra))
    return rows


async def test_slices_equal_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    slicing_rows = 300
    monkeypatch.setattr(slicing, "ROWS", slicing_rows)
    policy, inv = Policy(), Inventory()
    for seed in range(3):
        cols = columns(storm(1000, seed), ("amount_due",))
        assert not slicing.entangled(cols)
        turn = Turn()
        sliced = await slicing.validate_sliced(
            cols, lambda rows: validate_batch(rows, policy, inv.accounts), turn)
        whole = validate_batch(cols, policy, inv.accounts)
        assert sliced.subscribers == whole.subscribers and sliced.lean == whole.lean
        assert sorted(map(repr, sliced.rejections)) == sorted(map(repr, whole.rejections))
        assert turn.slices == -(-1000 // slicing_rows)
        delta = await slicing.validate_sliced(
            cols, lambda rows: validate_rows_of(rows, policy, inv), Turn())
        assert delta.subscribers == validate_rows_of(cols, policy, inv).subscribers


def test_rows_that_bear_on_each_other_are_validated_together() -> None:
    plain = storm(50, 0)
    assert not slicing.entangled(columns(plain, ()))
    for odd in ([*plain, row("a1", "10.9.9.9")],  # an account twice
                [*plain, row("x", plain[3]["addresses"])],  # a host twice
                [*plain, row("x", "10.7.0.0/24")],  # a prefix
                [*plain, row("x", ["10.7.0.1"])]):  # a list: no quick check
        assert slicing.entangled(columns(odd, ()))


async def test_the_check_in_steps_answers_as_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicing, "CHECK_ROWS", 7)  # duplicates fall in different steps
    plain = storm(50, 0)
    assert not await slicing.entangled_sliced(columns(plain, ()))
    nameless = [*plain, row(None, "10.9.9.8"), row(None, "10.9.9.7")]  # type: ignore[arg-type]
    assert not slicing.entangled(columns(nameless, ()))
    assert not await slicing.entangled_sliced(columns(nameless, ()))
    for odd in ([row("a1", "10.9.9.9"), *plain],
                [*plain[:3], *plain[40:], row("x", plain[3]["addresses"]), *plain[3:40]],
                [*plain, row("x", "10.7.0.0/24")],
                [*plain, row("x", ["10.7.0.1"])]):
        assert slicing.entangled(columns(odd, ()))
        assert await slicing.entangled_sliced(columns(odd, ()))
