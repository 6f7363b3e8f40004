"""The bulk column checks give the row-by-row outcome, row for row (pure)."""

from __future__ import annotations

from decimal import Decimal
from ipaddress import ip_network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from debtgate.billing.rows import Policy
from debtgate.billing.validate import validate_columns, validate_rows
from debtgate.billing.validate_bulk import LEAN_V4, plain_hosts
from debtgate.enforce.inventory import Inventory
from debtgate.model import State, Subscriber
from tests.unit.helpers import columns

EXTRAS = ("amount_due", "currency", "since", "block_at", "name", "language", "tariff",
          "nas", "session_id", "user_name")

accounts = st.sampled_from(["a", "b", "c", "d", "e", " f", "g h", "", None, "x" * 129])
addresses = st.one_of(
    st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3", " 10.0.0.4 ", "10.0.1.0/24",
                     "10.0.1.7", "2001:db8::1", "127.0.0.1", "10.0.0.256", "", None,
                     "10.0.0.5, 10.0.0.6", "\u0661\u0660.0.0.9"]),
    st.integers(0, 255).map(lambda i: f"10.9.0.{i}"))
states = st.sampled_from(["active", "blocked", "paused", "disabled", "warn", "owing", None])
extras = st.fixed_dictionaries({}, optional={
    "amount_due": st.sampled_from(["500", "12,50", "abc", "1e20", "0", None]),
    "currency": st.sampled_from(["rub", " ", "EUR", None, "RUBLES", "ру", "U$D", " usd ", "€",
                                 "12"]),
    "since": st.sampled_from(["2026-11-01", "2026-13-01", "2026-11-01T10:00:00", None]),
    "block_at": st.sampled_from(["2026-12-01", "soon", None]),
    "name": st.sampled_from(["  Ann ", "Bob", "", None, "n" * 201, " " + "m" * 200 + " ",
                             "k" * 200]),
    "language": st.sampled_from(["EN", "ru", None]),
    "tariff": st.sampled_from(["Home 100", None]),
    "nas": st.sampled_from(["bras1", None, None, None]),
})
rows = st.lists(st.builds(lambda a, ad, s, e: {"account": a, "addresses": ad, "state": s, **e},
                          accounts, addresses, states, extras), max_size=30)


def outcome_of(items: list[dict[str, Any]], policy: Policy) -> tuple[Any, Any]:
    by_rows = validate_rows(items, policy)
    by_cols = validate_columns(columns(items, EXTRAS), policy)
    inv = Inventory(default_currency=policy.default_currency)
    inv.replace_all(by_cols.subscribers, by_cols.lean)
    return ((dict(inv.accounts), sorted((r.account or "", r.reason) for r in by_cols.rejections),
             by_cols.foreign_addresses, sorted(by_cols.foreign_accounts)),
            (by_rows.subscribers, sorted((r.account or "", r.reason) for r in by_rows.rejections),
             by_rows.foreign_addresses, sorted(by_rows.foreign_accounts)))


SERVES = Policy(serves=(ip_network("10.0.0.0/24"), ip_network("10.1.0.0/16"),
                        ip_network("2001:db8::/32")))
"""A gateway that serves part of the rows' hosts: the others are another gateway's."""


@settings(max_examples=400, deadline=None)
@given(rows)
def test_columns_outcome_equals_rows_outcome(items: list[dict[str, Any]]) -> None:
    got, want = outcome_of(items, Policy())
    assert got == want


@settings(max_examples=400, deadline=None)
@given(rows)
def test_columns_outcome_equals_rows_outcome_with_serves(items: list[dict[str, Any]]) -> None:
    got, want = outcome_of(items, SERVES)
    assert got == want


@pytest.mark.parametrize("policy", [Policy(), SERVES], ids=["all", "serves"])
def test_a_large_plain_batch_and_a_few_odd_rows(policy: Policy) -> None:
    items: list[dict[str, Any]] = [
        {"account": f"A{i}", "addresses": f"10.1.{i // 250}.{i % 250 + 1}",
         "state": ("blocked", "warn", "paused", "active")[i % 4], "amount_due": "500",
         "since": "2026-11-01", "name": f"Name {i}", "currency": None}
        for i in range(5000)]
    items[10]["amount_due"] = "lots"           # rejected, the rest stays in bulk
    items[11]["account"] = "A12"               # duplicate: the first row keeps it
    items[13]["addresses"] = "10.1.0.15"       # claims row 14's host: the earlier row wins
    items[20]["nas"] = "bras1"                 # a session: the row path builds it
    items[21]["addresses"] = "10.1.200.0/24"   # a prefix
    items[22]["addresses"] = "\u0661\u0660.1.0.23"  # Arabic-Indic digits: not an address
    items[23]["addresses"] = "10.2.0.24"       # outside SERVES: another gateway's
    got, want = outcome_of(items, policy)
    assert got == want
    subs, rejections, foreign, foreign_accounts = got
    if policy is SERVES:
        assert "A23" not in subs and foreign == 1 and foreign_accounts == ["A23"]
    else:
        assert subs["A23"].addresses == ("10.2.0.24",) and foreign == 0
    assert ("A10", "bad_amount") in rejections and ("A12", "duplicate_account") in rejections
    assert ("A14", "address_conflict") in rejections and ("A22", "bad_address") in rejections
    assert subs["A20"].session is not None and subs["A21"].addresses == ("10.1.200.0/24",)
    assert subs["A0"].currency == "RUB" and subs["A0"].name == "Name 0"


def test_a_currency_not_iso_4217_or_a_name_too_long_is_rejected_on_every_path() -> None:
    """The acceptance report: "RUBLES" was shown as "5.00 RUBLES" and names over 200
    characters were taken. The bulk column path, the plain row path and the general
    row path agree; the account keeps its last good version."""
    items: list[dict[str, Any]] = [
        {"account": f"A{i}", "addresses": f"10.1.{i // 250}.{i % 250 + 1}",
         "state": ("blocked", "active")[i % 2], "amount_due": "5", "currency": "EUR",
         "name": f"Name {i}"} for i in range(3000)]
    items[4]["currency"] = "RUBLES"
    items[5]["currency"] = "ру"                 # letters, not ASCII
    items[6]["currency"] = " usd "              # accepted as USD
    items[7]["name"] = "n" * 201
    items[8]["name"] = "  " + "m" * 200 + " "   # 200 once stripped: accepted
    items[9]["currency"], items[9]["nas"] = "RUBLES", "bras1"  # the general row path
    items[10]["currency"] = ""                  # blank: the default currency
    previous = {"A4": Subscriber("A4", ("10.1.0.5",), State.BLOCKED, Decimal(5), "RUB")}
    for batch in (items, items[4:11]):
        got, want = outcome_of(batch, Policy())
        assert got == want
        by_cols = validate_columns(columns(batch, EXTRAS), Policy(), previous)
        by_rows = validate_rows(batch, Policy(), previous)
        for out in (by_cols, by_rows):
            rejected = {r.account: (r.reason, r.detail) for r in out.rejections}
            iso = "is not an ISO 4217 code (three letters)"
            assert rejected == {
                "A4": ("bad_currency", f"currency: 'RUBLES' {iso}"),
                "A5": ("bad_currency", f"currency: 'ру' {iso}"),
                "A7": ("bad_field", "name: 201 characters, longer than 200"),
                "A9": ("bad_currency", f"currency: 'RUBLES' {iso}")}
            assert out.subscribers["A4"] is previous["A4"] and "A7" not in out.subscribers
            assert out.subscribers["A6"].currency == "USD"
            assert out.subscribers["A8"].name == "m" * 200
            assert out.subscribers["A10"].currency == "RUB"


HOSTS = ["10.0.0.1", "0.1.2.3", "255.255.255.255", "223.255.0.1", "240.0.0.1", "01.2.3.4",
         "1.2.3.04", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 10.0.0.1", "10.0.0.1 ",
         "10.0.0.1\n10.0.0.2", "127.0.0.1", "0.0.0.0", "0.0.0.0.1", "169.254.9.9",
         "169.25.9.9", "224.0.0.1", "239.1.1.1", "\u0661\u0660.0.0.1", "10.0.0.1\x00",
         "10.0.0.0/24", "", "1.2.3.4\n127.0.0.1"]


@given(st.lists(st.sampled_from(HOSTS), min_size=1, max_size=6))
def test_plain_hosts_over_a_column_agrees_with_the_pattern(hosts: list[str]) -> None:
    assert plain_hosts(hosts) == all(LEAN_V4.fullmatch(h) for h in hosts)


def test_plain_hosts_refuses_what_is_not_text() -> None:
    assert plain_hosts(["10.0.0.1", "10.0.0.2"]) and not plain_hosts(["10.0.0.1", None])
    assert not plain_hosts([["10.0.0.1"]]) and plain_hosts([])
