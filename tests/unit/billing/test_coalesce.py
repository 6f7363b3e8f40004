"""Adaptive coalescing of change notifications, with an injected clock."""

from __future__ import annotations

import pytest

from debtgate.billing.coalesce import FULL_PAYLOAD, Coalescer, PendingIds, quiet_for
from debtgate.billing.postgres import PostgresSource, PostgresSourceSection


def test_idle_feed_applies_a_single_notification_after_the_quiet_time() -> None:
    c = Coalescer(0.020)
    assert c.due() is None
    c.arrived(100.0)
    assert c.due() == pytest.approx(100.002)  # not 100.020: a single payment is fast
    assert c.take() == 100.0
    assert c.due() is None


def test_one_statement_delivered_over_a_few_reads_stays_one_change() -> None:
    c = Coalescer(0.020)
    for i in range(10):  # ids trickle in, 0.5 ms apart
        c.arrived(100.0 + i * 0.0005)
    assert c.due() == pytest.approx(100.0045 + 0.002)


def test_a_long_trickle_is_capped_by_the_window() -> None:
    c = Coalescer(0.020)
    for i in range(100):
        c.arrived(100.0 + i * 0.001)
    assert c.due() == pytest.approx(100.020)


def test_notifications_during_an_apply_are_gathered_for_the_window() -> None:
    c = Coalescer(0.020)
    c.arrived(100.0)
    c.take()
    c.started()
    c.arrived(100.001)  # while the apply runs
    c.applied(100.050)
    assert c.due() == pytest.approx(100.021)  # already due: applied right away


def test_a_burst_right_after_an_apply_is_batched() -> None:
    c = Coalescer(0.020)
    c.started()
    c.applied(100.0)
    c.arrived(100.005)  # within the window after the apply: under load
    assert c.due() == pytest.approx(100.025)
    c.take()
    c.started()
    c.applied(100.030)
    c.arrived(100.100)  # idle again
    assert c.due() == pytest.approx(100.102)


def test_quiet_time_scales_with_the_window_and_is_bounded() -> None:
    assert quiet_for(0.0) == 0.0
    assert quiet_for(0.005) == 0.001
    assert quiet_for(0.200) == pytest.approx(0.020)
    assert Coalescer(0.2, quiet=0.0).due() is None


def test_a_split_id_list_waits_for_its_last_part() -> None:
    c = Coalescer(0.020)
    c.arrived(100.0, size=7_900)  # one full part of a statement's ids: more follow
    assert c.due() == pytest.approx(100.200)  # at most SPLIT_WAIT windows
    c.arrived(100.030, size=7_900)  # later than the window: still the same list
    assert c.due() == pytest.approx(100.200)
    c.arrived(100.031, size=1_200)  # the last part ends the list
    due = c.due()
    assert due is not None and due <= 100.033  # due now: one change, not three
    c.take()
    c.arrived(101.0, size=12)  # a payment afterwards is fast again
    assert c.due() == pytest.approx(101.002)


def test_pending_ids_keep_the_order_they_arrived_in_each_once() -> None:
    p = PendingIds()
    p.add(["c", "b", "a"])
    p.add(["b", "z", "d"])  # b again: it stays where it first arrived
    assert len(p) == 5
    ids, asked = p.take(sort_below=2)
    assert ids == ["c", "b", "a", "z", "d"] and asked == {"a", "b", "c", "d", "z"}
    assert len(p) == 0 and p.take(sort_below=2) == ([], set())


def test_pending_ids_without_repeats_come_in_arrival_order() -> None:
    p = PendingIds()
    for part in (["9", "8"], ["7"], ["1", "0"]):
        p.add(part)
    assert p.take(sort_below=3)[0] == ["9", "8", "7", "1", "0"]


def test_a_few_pending_ids_come_sorted_and_clear_forgets_all() -> None:
    p = PendingIds()
    p.add(["b", "a"])
    p.add(["a"])
    assert p.take(sort_below=2) == (["a", "b"], {"a", "b"})
    p.add(["x"])
    p.clear()
    assert not p and p.take(sort_below=0) == ([], set())


def test_a_short_notification_elsewhere_ends_a_split_list() -> None:
    c = Coalescer(0.020)
    c.arrived(100.0, size=6_116)  # the reference trigger's last part can be this long
    assert c.due() == pytest.approx(100.200)
    c.list_ended()  # a payment's notification went to the lane: the list is over
    assert c.due() == pytest.approx(100.002)


def _storm_payloads(n: int) -> list[str]:
    """The reference trigger's split of ``n`` sorted ids (``debtgate_send``)."""
    parts, payload = [], ""
    for one in sorted(f"S{i}" for i in range(1, n + 1)):
        if len(payload) + len(one) + 1 > 7900:
            parts.append(payload)
            payload = ""
        payload = one if not payload else f"{payload},{one}"
    return [*parts, payload]


def test_a_payment_right_after_a_storm_with_a_long_last_part_goes_over_the_lane() -> None:
    source = PostgresSource(PostgresSourceSection(dsn="postgresql:///billing"))
    source._lane_up = True  # as in a session with its second connection
    parts = _storm_payloads(60_000)
    assert len(parts[-1]) >= FULL_PAYLOAD  # the case that held the payment (606 ms)
    for payload in parts:
        source._on_notify(None, 1, "debtgate", payload)
    source._on_notify(None, 2, "debtgate", "A-blocked")
    assert "A-blocked" in source._small.ids and "A-blocked" not in source._pending.ids
    assert len(source._pending) == 60_000
    assert not source._coalesce.split  # the storm is due after its window, not 10 of them
