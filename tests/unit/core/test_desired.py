"""Subscribers to the content of every enforcement set."""

from __future__ import annotations

from debtgate.core.desired import (
    build_desired,
    build_desired_bulk,
    elements_by_set,
    garden_desired,
    placements,
    update_desired,
    where_is,
)
from debtgate.model import State, Subscriber


def sub(account: str, state: State, *addresses: str) -> Subscriber:
    return Subscriber(account=account, addresses=addresses, state=state)


SUBS = [
    sub("a", State.ACTIVE, "10.0.0.1"),
    sub("b", State.BLOCKED, "10.0.0.2", "2001:db8::2"),
    sub("p", State.PAUSED, "10.0.1.0/24"),
    sub("d", State.DISABLED, "2001:db8:1::/56"),
    sub("w", State.WARN, "10.0.0.7"),
]


def test_each_address_lands_in_one_set_of_its_category() -> None:
    sets = build_desired(SUBS)
    assert sets["blocked_v4_host"] == {"10.0.0.2"} and sets["blocked_v6_host"] == {"2001:db8::2"}
    assert sets["locked_v4_net"] == {"10.0.1.0/24"}
    assert sets["locked_v6_net"] == {"2001:db8:1::/56"}
    assert sets["warn_v4_host"] == {"10.0.0.7"}
    everything = [e for content in sets.values() for e in content]
    assert "10.0.0.1" not in everything and len(everything) == len(set(everything)) == 5


def test_the_effective_state_decides_not_billing() -> None:
    override = {"a": State.BLOCKED, "b": State.ACTIVE}
    sets = build_desired(SUBS, lambda s: override.get(s.account, s.state))
    assert sets["blocked_v4_host"] == {"10.0.0.1"} and not sets["blocked_v6_host"]


def test_the_bulk_builder_equals_the_row_builder() -> None:
    states = [s.state for s in SUBS]
    assert build_desired_bulk(SUBS, states) == build_desired(SUBS)
    only_v4_hosts = [sub(f"x{i}", State.BLOCKED, f"10.9.0.{i}") for i in range(1, 50)]
    assert elements_by_set(only_v4_hosts, [State.BLOCKED] * 49) == {
        "blocked_v4_host": [f"10.9.0.{i}" for i in range(1, 50)]}


def test_update_moves_one_account_and_returns_its_scope() -> None:
    sets = build_desired(SUBS)
    old = SUBS[1]
    new = sub("b", State.WARN, "10.0.0.2", "10.0.0.3")
    touched = update_desired(sets, old, old.state, new, new.state)
    assert touched == {"10.0.0.2", "2001:db8::2", "10.0.0.3"}
    assert not sets["blocked_v4_host"] and not sets["blocked_v6_host"]
    assert sets["warn_v4_host"] == {"10.0.0.7", "10.0.0.2", "10.0.0.3"}
    assert update_desired(sets, new, new.state, None, None) == {"10.0.0.2", "10.0.0.3"}
    assert sets["warn_v4_host"] == {"10.0.0.7"}


def test_placements_garden_and_where_is() -> None:
    assert placements(SUBS[0], State.ACTIVE) == []
    assert placements(SUBS[1], State.BLOCKED) == [("blocked_v4_host", "10.0.0.2"),
                                                  ("blocked_v6_host", "2001:db8::2")]
    garden = garden_desired(["198.18.0.0/24", "2001:db8:ff::/48"], ["198.18.0.53"])
    assert garden == {"garden_v4": {"198.18.0.0/24"}, "garden_v6": {"2001:db8:ff::/48"},
                      "resolvers_v4": {"198.18.0.53"}, "resolvers_v6": set()}
    assert where_is(build_desired(SUBS), "10.0.0.7") == ["warn_v4_host"]
