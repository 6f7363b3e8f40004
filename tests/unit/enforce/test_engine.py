"""Engine logic with fake kernel adapters: events in, plans out."""

from __future__ import annotations

import pytest

from debtgate.errors import ApplyError
from debtgate.model import State
from tests.unit.helpers import Harness, row


async def test_snapshot_places_each_state_in_its_set() -> None:
    h = Harness()
    plan = await h.snapshot(
        row("a", ["10.0.0.1"], "active"),
        row("b", ["10.0.0.2", "2001:db8::2"], "blocked"),
        row("c", "10.0.1.0/24", "warn"),
        row("d", ["10.0.0.4"], "paused"),
        row("e", ["2001:db8:1::/56"], "disabled"),
    )
    assert plan is not None
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}
    assert h.nft.sets["blocked_v6_host"] == {"2001:db8::2"}
    assert h.nft.sets["warn_v4_net"] == {"10.0.1.0/24"}
    assert h.nft.sets["locked_v4_host"] == {"10.0.0.4"}
    assert h.nft.sets["locked_v6_net"] == {"2001:db8:1::/56"}
    assert "10.0.0.1" not in set().union(*h.nft.sets.values())
    assert len(h.nft.plans) == 1  # one transaction


async def test_resnapshot_identical_writes_nothing() -> None:
    h = Harness()
    rows = [row("b", ["10.0.0.2"], "blocked"), row("a", ["10.0.0.1"])]
    await h.snapshot(*rows)
    assert await h.snapshot(*rows) is None
    assert len(h.nft.plans) == 1


async def test_payment_delta_moves_only_that_account() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"), row("c", ["10.0.0.3"], "blocked"))
    plan = await h.delta(row("b", ["10.0.0.2"], "active"))
    assert plan is not None
    assert plan.deletes("blocked_v4_host") == ("10.0.0.2",)
    assert plan.writes == 1
    assert plan.conntrack == ("10.0.0.2",)
    assert h.cutter.cut_calls[-1] == ["10.0.0.2"]
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.3"}
    assert [(t.account, t.old, t.new) for t in h.transitions[-1:]] == [
        ("b", State.BLOCKED, State.ACTIVE)]


async def test_state_change_moves_between_sets_in_one_plan() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "warn"))
    plan = await h.delta(row("b", ["10.0.0.2"], "blocked"))
    assert plan is not None
    assert plan.deletes("warn_v4_host") == ("10.0.0.2",)
    assert plan.adds("blocked_v4_host") == ("10.0.0.2",)


async def test_gone_account_is_released() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"))
    await h.delta(gone=("b",))
    assert h.nft.sets["blocked_v4_host"] == set()
    assert h.engine.inventory.get("b") is None


async def test_snapshot_drops_accounts_absent_from_it() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"), row("c", ["10.0.0.3"], "blocked"))
    await h.snapshot(row("c", ["10.0.0.3"], "blocked"))
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.3"}


async def test_bad_row_keeps_last_good_version() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"))
    await h.snapshot(row("b", ["10.0.0.2"], "owing"))
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}
    assert h.engine.rejections["unknown_state"] == 1


async def test_delta_claiming_another_accounts_address_is_rejected() -> None:
    h = Harness()
    await h.snapshot(row("a", ["10.0.0.1"], "active"), row("b", ["10.0.0.2"], "blocked"))
    await h.delta(row("b", ["10.0.0.1"], "blocked"))
    assert h.engine.rejections["address_conflict"] == 1
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}
    await h.delta(row("c", ["10.0.0.5"], "blocked"))  # a host inside nobody's prefix is fine
    assert "10.0.0.5" in h.nft.sets["blocked_v4_host"]


async def test_failed_transaction_changes_nothing_and_is_retried_by_next_event() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"))
    h.nft.fail_next = True
    with pytest.raises(ApplyError):
        await h.delta(row("b", ["10.0.0.2"], "active"))
    assert h.engine.inventory.get("b").state is State.BLOCKED  # type: ignore[union-attr]
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}
    plan = await h.delta(row("b", ["10.0.0.2"], "active"))
    assert plan is not None and plan.deletes("blocked_v4_host") == ("10.0.0.2",)


async def test_reconcile_repairs_drift_and_counts_it() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"), row("c", ["10.0.0.3"], "blocked"))
    h.nft.sets["blocked_v4_host"].clear()
    h.nft.sets["blocked_v4_host"].add("10.9.9.9")  # someone's manual element
    repaired = await h.engine.full_reconcile()
    assert repaired == 3
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2", "10.0.0.3"}
    assert h.engine.stats.drift_repairs == 3


async def test_a_dump_missing_elements_once_is_not_drift() -> None:
    h = Harness()
    await h.snapshot(row("b", ["10.0.0.2"], "blocked"), row("c", ["10.0.0.3"], "blocked"))
    read = h.nft.read_sets
    reads = 0

    async def torn_then_whole(names: object) -> dict[str, set[str]]:
        nonlocal reads
        reads += 1
        got = await read(names)
        if reads == 1:  # a dump overlapping a hash-table resize
            got["blocked_v4_host"].discard("10.0.0.3")
        return got

    h.nft.read_sets = torn_then_whole  # type: ignore[method-assign]
    writes = len(h.nft.plans)
    assert await h.engine.full_reconcile() == 0
    assert reads == 2 and h.engine.stats.drift_repairs == 0 and len(h.nft.plans) == writes


async def test_acknowledge_only_in_warn() -> None:
    h = Harness()
    await h.snapshot(row("w", ["10.0.0.7", "2001:db8::7"], "warn"),
                     row("b", ["10.0.0.2"], "blocked"))
    assert await h.engine.portal.acknowledge("10.0.0.2") is None
    result = await h.engine.portal.acknowledge("10.0.0.7")
    assert result == {"acknowledged": True, "expires_in": 3600}
    assert ("ack_v4", ["10.0.0.7"], 3600) in h.nft.timed
    assert ("ack_v6", ["2001:db8::7"], 3600) in h.nft.timed
