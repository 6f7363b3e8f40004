"""A prefix carved around other accounts' addresses (pure)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from debtgate.core.carve import carve, carve_addresses
from debtgate.core.reconcile import commit, reconcile


def test_a_host_is_cut_out_of_a_v4_prefix() -> None:
    assert carve("100.72.1.8/29", ["100.72.1.12"]) == (
        "100.72.1.8/30", "100.72.1.13", "100.72.1.14/31")


def test_several_holes_and_a_nested_prefix() -> None:
    assert carve("10.0.0.0/28", ["10.0.0.4/30", "10.0.0.5", "10.0.0.15"]) == (
        "10.0.0.0/30", "10.0.0.8/30", "10.0.0.12/31", "10.0.0.14")


def test_v6_prefix_and_foreign_holes() -> None:
    pieces = carve("2001:db8:100:700::/56", ["2001:db8:100:700::12", "10.0.0.1",
                                             "2001:db8:ffff::1"])
    assert "2001:db8:100:700::12" not in pieces and len(pieces) == 72


def test_carve_addresses_keeps_hosts_and_untouched_prefixes() -> None:
    assert carve_addresses(("10.0.0.1", "10.0.1.0/30", "10.0.2.0/31"), ["10.0.2.1"]) == (
        "10.0.0.1", "10.0.1.0/30", "10.0.2.0")


@given(st.integers(24, 30), st.sets(st.integers(0, 255), max_size=12))
def test_pieces_cover_exactly_the_prefix_without_the_holes(plen: int, offsets: set[int]) -> None:
    net = ipaddress.ip_network(f"10.1.2.0/{plen}")
    holes = [str(net.network_address + o) for o in offsets if o < net.num_addresses]
    pieces = [ipaddress.ip_network(p) for p in carve(str(net), holes)]
    covered = {int(a) for p in pieces for a in p}
    assert covered == {int(a) for a in net} - {int(ipaddress.ip_address(h)) for h in holes}
    assert sum(p.num_addresses for p in pieces) == len(covered)  # no overlap


def test_overlapping_interval_change_refills_the_set_in_one_transaction() -> None:
    """nft 1.0.6 refuses an added interval overlapping one deleted in the same batch."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    actual = {"blocked_v4_net": {"100.72.1.8/29"}, "warn_v4_net": {"10.9.0.0/24"}}
    desired = {"blocked_v4_net": {"100.72.1.8/30", "100.72.1.14/31"},
               "warn_v4_net": {"10.9.0.0/24", "10.9.1.0/24"}}
    plan = reconcile(desired, actual, now)
    delta = {d.name: d for d in plan.changes}
    assert delta["blocked_v4_net"].whole == ("100.72.1.14/31", "100.72.1.8/30")
    assert delta["blocked_v4_net"].delete == ("100.72.1.8/29",)
    assert delta["warn_v4_net"].whole is None  # no overlap: plain add
    assert "100.72.1.8/29" in plan.conntrack
    commit(actual, plan)
    assert actual == desired
