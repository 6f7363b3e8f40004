"""Address conflicts and another gateway's rows, through the engine (pure logic, fake
kernel): a prefix never restricts other accounts' hosts; foreign rows are not counted."""

from __future__ import annotations

from ipaddress import ip_network

from debtgate.billing.rows import Policy
from debtgate.billing.validate import validate_rows
from debtgate.core.guard import GuardPolicy
from tests.unit.helpers import Harness, row

HOSTS = [row(f"C-{i}", [f"100.72.1.{i}"]) for i in (9, 10, 11, 12)]


async def test_snapshot_prefix_is_carved_around_hosts_held_before() -> None:
    h = Harness()
    await h.snapshot(*HOSTS)
    await h.snapshot(*HOSTS, row("N", ["100.72.1.8/29"], "blocked"))
    assert h.nft.sets["blocked_v4_net"] == {"100.72.1.14/31"}
    assert h.nft.sets["blocked_v4_host"] == {"100.72.1.8", "100.72.1.13"}
    assert h.engine.inventory.owner("100.72.1.12") == "C-12"
    assert h.engine.inventory.owner("100.72.1.13") == "N"
    assert h.engine.rejections["address_conflict"] == 1  # against N, not the four


async def test_delta_hosts_after_the_prefix_carve_it_and_leave_it_whole() -> None:
    h = Harness()
    await h.snapshot(row("N", ["100.72.1.8/29"], "blocked"), row("x", ["10.0.0.1"]))
    await h.delta(row("C-12", ["100.72.1.12"]))
    assert h.nft.sets["blocked_v4_net"] == {"100.72.1.8/30", "100.72.1.14/31"}
    assert h.nft.sets["blocked_v4_host"] == {"100.72.1.13"}
    assert h.engine.last_rejections[-1]["account"] == "N"


async def test_delta_prefix_after_the_hosts_v6() -> None:
    h = Harness()
    await h.snapshot(row("C", ["2001:db8:7::12"]), row("x", ["10.0.0.1"]))
    await h.delta(row("N", ["2001:db8:7::/56"], "blocked"))
    elems = h.nft.sets["blocked_v6_net"] | h.nft.sets["blocked_v6_host"]
    assert "2001:db8:7::/56" not in elems and "2001:db8:7::13" in elems
    assert all(not ip_network(e).overlaps(ip_network("2001:db8:7::12")) for e in elems)


def test_exact_same_address_two_new_accounts_earlier_row_wins() -> None:
    out = validate_rows([row("a", ["10.0.0.5"], "blocked"), row("b", ["10.0.0.5"])], Policy())
    assert set(out.subscribers) == {"a"}
    assert [(r.account, r.reason) for r in out.rejections] == [("b", "address_conflict")]


SERVES = Policy(serves=(ip_network("100.64.0.0/16"),))


def test_foreign_rows_are_not_subscribers() -> None:
    out = validate_rows([row("L", ["100.64.1.1"]), row("F", ["100.99.0.1"], "blocked"),
                         row("M", ["100.64.1.2", "100.99.0.2"], "blocked")], SERVES)
    assert set(out.subscribers) == {"L", "M"} and out.foreign_accounts == ["F"]
    assert out.subscribers["M"].addresses == ("100.64.1.2",)
    assert out.foreign_addresses == 2


async def test_guard_counts_only_rows_this_gateway_enforces() -> None:
    h = Harness(SERVES)
    h.engine.guard = GuardPolicy(share=0.2, min_count=2)
    local = [row(f"L{i}", [f"100.64.1.{i}"]) for i in range(20)]
    foreign = [row(f"F{i}", [f"100.99.1.{i}"], "blocked") for i in range(200)]
    await h.snapshot(*local, *foreign)
    assert len(h.engine.inventory) == 20 and h.engine.foreign_rows == 200
    # One local block: 1 of 20 is under the share; foreign rows neither count nor hold it.
    await h.delta(row("L1", ["100.64.1.1"], "blocked"), *foreign[:50])
    assert h.nft.sets["blocked_v4_host"] == {"100.64.1.1"} and not h.engine.held
    # An account that moves to another gateway's prefix leaves this one.
    await h.delta(row("L1", ["100.99.9.9"], "blocked"))
    assert h.engine.inventory.get("L1") is None and not h.nft.sets["blocked_v4_host"]


def test_covering_many_equals_covering_one_by_one() -> None:
    from debtgate.enforce.inventory import Inventory
    from debtgate.model import State, Subscriber

    inv = Inventory()
    inv.replace_all({"P": Subscriber("P", ("10.1.0.0/16",), State.BLOCKED),
                     "Q": Subscriber("Q", ("10.1.2.0/24", "2001:db8::/48"), State.WARN)},
                    {"h": "10.9.9.9"})
    addrs = ["10.1.2.3", "10.1.9.9", "10.2.0.1", "10.1.2.0/28", "2001:db8::1", "2001:db9::1",
             "10.1.0.0/16"]
    many = sorted(inv.covering_many(addrs))
    one = sorted((a, owner, prefix) for a in addrs for owner, prefix in inv.covering(a))
    assert many == one
    assert ("10.1.2.3", "Q", "10.1.2.0/24") in many and ("10.1.2.3", "P", "10.1.0.0/16") in many
