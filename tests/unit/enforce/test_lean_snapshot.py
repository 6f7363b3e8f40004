"""Snapshots in columns: the COPY parser, the lean validation path, the lean inventory."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import pytest

from debtgate.billing.base import Columns, Snapshot
from debtgate.billing.pgcopy import CopyParser, lean_query
from debtgate.billing.pgfetch import summary_query
from debtgate.billing.rows import Policy
from debtgate.billing.validate import validate_columns, validate_rows
from debtgate.core.transitions import snapshot_candidates
from debtgate.enforce.inventory import Inventory
from debtgate.model import State
from tests.unit.helpers import Harness, row

EXTRAS = ("amount_due", "since", "name")


def columns(*rows: dict[str, Any]) -> Columns:
    cols = Columns(EXTRAS)
    for i, r in enumerate(rows):
        cols.account.append(r.get("account"))
        cols.addresses.append(r.get("addresses"))
        cols.state.append(r.get("state"))
        cols.marks.append(i)
        if r.get("state") != "active":
            cols.extra[i] = tuple(r.get(n) for n in EXTRAS)
    return cols


def test_copy_parser_splits_chunks_nulls_and_escapes() -> None:
    parser = CopyParser(EXTRAS)
    data = ("a1\t10.0.0.1\tactive\t7\t\t\t\n"
            "a2\t10.0.0.2\tblocked\t8\t12.50\t2026-11-01\tJo\\tAnn\n"
            "a3\t10.0.0.3\twarn\t\t\t\tZoë\n").encode()
    for i in range(0, len(data), 5):  # chunks cut lines and a UTF-8 character
        parser.feed_sync(data[i:i + 5])
    cols = parser.close()
    assert cols.account == ["a1", "a2", "a3"]
    assert cols.marks == [7, 8, None]
    assert cols[0] == {"account": "a1", "addresses": "10.0.0.1", "state": "active"}
    assert cols[1] == {"account": "a2", "addresses": "10.0.0.2", "state": "blocked",
                       "amount_due": "12.50", "since": "2026-11-01", "name": "Jo\tAnn"}
    assert cols[2]["name"] == "Zoë" and cols[2]["amount_due"] is None
    assert [r["account"] for r in cols] == ["a1", "a2", "a3"] and len(cols[1:]) == 2


def test_lean_query_fetches_display_columns_only_for_non_active_rows() -> None:
    sql, extras = lean_query("SELECT * FROM v;", {"account": "text", "addresses": "_inet",
                                                  "state": "text", "name": "text",
                                                  "version": "int8"})
    assert extras == ("name",)
    assert "array_to_string(q.addresses, ' ')" in sql and "q.version::int8" in sql
    assert "CASE WHEN q.state::text = 'active' THEN NULL ELSE q.name END" in sql
    assert "hashtextextended" in lean_query("SELECT * FROM v", {
        "account": "text", "addresses": "text", "state": "text"})[0]
    assert "sum(q.version::int8)" in summary_query("SELECT * FROM v")


ROWS = [
    row("a", "10.0.0.1"),
    row("b", "10.0.0.2", "blocked", amount_due="5", name="B"),
    row("c", "10.0.1.0/24", "warn"),
    row("d", " 10.0.0.4 "),          # general path (spaces), same outcome
    row("e", "127.0.0.1"),           # rejected
    row("a", "10.0.0.9"),            # duplicate account
    row("f", "10.0.0.2"),            # claims b's address: the earlier row keeps it
    row("g", "10.0.1.7"),            # inside c's prefix: g keeps it, c's /24 is carved
    row("h", "10.0.0.8", "owing"),   # unknown state
]


@pytest.mark.parametrize("policy", [Policy(), Policy(serves=(ip_network("10.0.0.0/8"),))])
def test_validate_columns_matches_validate_rows(policy: Policy) -> None:
    general = validate_rows(ROWS, policy)
    lean = validate_columns(columns(*ROWS), policy)
    inv = Inventory(default_currency=policy.default_currency)
    inv.replace_all(lean.subscribers, lean.lean)
    assert dict(inv.accounts) == general.subscribers
    assert sorted((r.account, r.reason) for r in lean.rejections) == sorted(
        (r.account, r.reason) for r in general.rejections)
    # Only the plain active hosts stay lean (and only without a serves check).
    assert lean.lean == ({} if policy.serves else {"a": "10.0.0.1", "g": "10.0.1.7"})
    assert "10.0.1.7" not in general.subscribers["c"].addresses
    assert general.subscribers["c"].addresses[:4] == ("10.0.1.0/30", "10.0.1.4/31", "10.0.1.6",
                                                     "10.0.1.8/29")


def test_previous_owner_keeps_a_contested_address() -> None:
    inv = Inventory()
    inv.replace_all({}, {"f": "10.0.0.2"})
    out = validate_columns(columns(row("b", "10.0.0.2", "blocked"), row("f", "10.0.0.2")),
                           Policy(), inv.accounts)
    assert out.lean == {"f": "10.0.0.2"} and "b" not in out.subscribers


def test_lean_inventory_builds_subscribers_on_demand() -> None:
    inv = Inventory(default_currency="EUR")
    inv.replace_all({}, {"a": "10.0.0.1"})
    sub = inv.find("10.0.0.1")
    assert sub is not None and sub.account == "a" and sub.state is State.ACTIVE
    assert sub.currency == "EUR" and "a" in inv.accounts and len(inv.accounts) == 1
    inv.put(sub.__class__("a", ("10.0.0.5",), State.BLOCKED))
    assert inv.lean == {} and inv.owner("10.0.0.5") == "a" and inv.owner("10.0.0.1") is None
    assert inv.remove("a") is not None and len(inv) == 0


def test_snapshot_candidates_skip_unchanged_lean_accounts() -> None:
    sub = validate_rows([row("b", "10.0.0.2", "blocked")], Policy()).subscribers["b"]
    got = snapshot_candidates({"b": sub}, {"a": "10.0.0.1", "x": "10.0.0.3"},
                              {}, {"a": "10.0.0.1", "x": "10.0.0.4", "n": "10.0.0.5"})
    assert got == {"b", "x"}


async def test_engine_columns_snapshot_and_resnapshot() -> None:
    h = Harness()
    cols = columns(row("a", "10.0.0.1"), row("b", "10.0.0.2", "blocked"))
    await h.engine.handle(Snapshot(cols))
    assert h.nft.sets["blocked_v4_host"] == {"10.0.0.2"}
    assert h.engine.placed == {"a": State.ACTIVE, "b": State.BLOCKED}
    assert h.transitions and {t.account for t in h.transitions} == {"b"}
    # b pays, a becomes blocked: one transaction, two transitions.
    plan = await h.snapshot(row("a", "10.0.0.1", "blocked"), row("b", "10.0.0.2"))
    assert plan is not None and plan.adds("blocked_v4_host") == ("10.0.0.1",)
    assert {(t.account, t.new) for t in h.transitions[1:]} == {
        ("a", State.BLOCKED), ("b", State.ACTIVE)}
    # The same again through columns: nothing to do.
    before = len(h.nft.plans)
    await h.engine.handle(Snapshot(columns(row("a", "10.0.0.1", "blocked"),
                                           row("b", "10.0.0.2"))))
    assert len(h.nft.plans) == before


def test_a_gateway_that_serves_prefixes_keeps_its_active_hosts_lean() -> None:
    """With ``[network] serves`` set (most gateways), active one-host rows inside it stay
    lean (no Subscriber each: the memory of 900,000 active accounts); a host outside is
    another gateway's, as on the row path."""
    import ipaddress

    from debtgate.billing.base import Columns
    from debtgate.billing.rows import Policy
    from debtgate.billing.validate import validate_batch, validate_rows
    from debtgate.billing.validate_bulk import served_prefixes

    assert served_prefixes([ipaddress.ip_network("100.64.0.0/10")]) == tuple(
        f"100.{i}." for i in range(64, 128))
    assert served_prefixes([ipaddress.ip_network("10.0.0.0/8"),
                            ipaddress.ip_network("2001:db8::/32")]) == ("10.",)
    assert served_prefixes([ipaddress.ip_network("10.1.2.0/25")]) is None
    policy = Policy(serves=(ipaddress.ip_network("100.64.0.0/10"),))
    rows = [{"account": "in", "addresses": "100.65.0.1", "state": "active"},
            {"account": "edge", "addresses": "100.127.255.254", "state": "active"},
            {"account": "out", "addresses": "100.128.0.1", "state": "active"},
            {"account": "ten", "addresses": "10.64.0.1", "state": "active"},
            {"account": "blk", "addresses": "100.64.0.9", "state": "blocked"}]
    cols = Columns()
    for r in rows:
        cols.account.append(r["account"])
        cols.addresses.append(r["addresses"])
        cols.state.append(r["state"])
        cols.marks.append(None)
    got = validate_batch(cols, policy)
    assert got.lean == {"in": "100.65.0.1", "edge": "100.127.255.254"}
    assert sorted(got.foreign_accounts) == ["out", "ten"] and set(got.subscribers) == {"blk"}
    by_rows = validate_rows(rows, policy)
    assert sorted(by_rows.foreign_accounts) == ["out", "ten"]
    assert set(by_rows.subscribers) == {"in", "edge", "blk"}
