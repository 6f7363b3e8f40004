"""reconcile(desired, actual, now, scope) -> Plan: the exact changes, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from debtgate.core.reconcile import SORT_MAX, Plan, SetDelta, commit, reconcile

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_exact_delta_and_its_conntrack_cut() -> None:
    desired = {"blocked_v4_host": {"10.0.0.1", "10.0.0.2"}, "warn_v4_host": {"10.0.0.3"}}
    actual = {"blocked_v4_host": {"10.0.0.2", "10.0.0.9"}, "warn_v4_host": {"10.0.0.3"}}
    plan = reconcile(desired, actual, NOW)
    assert plan.at == NOW and plan.writes == 2
    assert plan.changes == (SetDelta("blocked_v4_host", ("10.0.0.1",), ("10.0.0.9",)),)
    assert plan.conntrack == ("10.0.0.1", "10.0.0.9")


def test_equal_state_gives_an_empty_plan() -> None:
    state = {"blocked_v4_host": {"10.0.0.1"}}
    plan = reconcile(state, {"blocked_v4_host": {"10.0.0.1"}}, NOW)
    assert plan.empty and plan.writes == 0 and plan.conntrack == ()


def test_a_scope_compares_only_its_elements() -> None:
    desired = {"blocked_v4_host": {"10.0.0.1"}}
    actual = {"blocked_v4_host": {"10.0.0.7", "10.0.0.8"}}  # drift outside the scope
    plan = reconcile(desired, actual, NOW, scope={"10.0.0.1"})
    assert plan.adds("blocked_v4_host") == ("10.0.0.1",)
    assert plan.deletes("blocked_v4_host") == ()  # the drift is left to a full reconcile
    full = reconcile(desired, actual, NOW)
    assert full.deletes("blocked_v4_host") == ("10.0.0.7", "10.0.0.8")


def test_a_move_between_sets_is_one_plan_and_one_cut() -> None:
    plan = reconcile({"warn_v4_host": {"10.0.0.1"}}, {"blocked_v4_host": {"10.0.0.1"}}, NOW)
    assert {d.name for d in plan.changes} == {"blocked_v4_host", "warn_v4_host"}
    assert plan.conntrack == ("10.0.0.1",)


def test_sets_outside_cut_sets_are_not_cut() -> None:
    plan = reconcile({"garden_v4": {"198.18.0.0/24"}}, {}, NOW)
    assert plan.adds("garden_v4") == ("198.18.0.0/24",) and plan.conntrack == ()


def test_overlapping_prefixes_refill_the_set_whole() -> None:
    desired = {"blocked_v4_net": {"10.0.0.0/25", "10.0.0.128/25"}}
    actual = {"blocked_v4_net": {"10.0.0.0/24"}}
    plan = reconcile(desired, actual, NOW)
    (delta,) = plan.changes
    assert delta.whole == ("10.0.0.0/25", "10.0.0.128/25")
    committed = {"blocked_v4_net": {"10.0.0.0/24"}}
    commit(committed, plan)
    assert committed == desired


def test_commit_applies_adds_and_deletes() -> None:
    actual = {"blocked_v4_host": {"10.0.0.9"}}
    plan = reconcile({"blocked_v4_host": {"10.0.0.1"}, "warn_v6_host": {"2001:db8::1"}},
                     actual, NOW)
    commit(actual, plan)
    assert actual == {"blocked_v4_host": {"10.0.0.1"}, "warn_v6_host": {"2001:db8::1"}}


def test_additions_keep_only_the_adds() -> None:
    plan = reconcile({"blocked_v4_host": {"10.0.0.1"}}, {"blocked_v4_host": {"10.0.0.2"}}, NOW)
    head = plan.additions()
    assert isinstance(head, Plan) and head.changes == (SetDelta("blocked_v4_host",
                                                                ("10.0.0.1",)),)
    assert head.conntrack == ("10.0.0.1",)


def test_large_plans_keep_set_order_small_ones_are_sorted() -> None:
    small = reconcile({"blocked_v4_host": {"10.0.0.3", "10.0.0.1", "10.0.0.2"}}, {}, NOW)
    assert small.adds("blocked_v4_host") == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    many = {f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(SORT_MAX + 1)}
    big = reconcile({"blocked_v4_host": many}, {}, NOW)
    assert set(big.adds("blocked_v4_host")) == many and big.writes == SORT_MAX + 1
