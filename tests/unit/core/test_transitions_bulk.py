"""The one-pass transitions of a first snapshot equal the general ones (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from debtgate.core.desired import build_desired, build_desired_bulk
from debtgate.core.transitions import arrivals, transitions
from debtgate.model import State, Subscriber

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SUBS = {f"a{i}": Subscriber(f"a{i}", addrs, state) for i, (addrs, state) in enumerate([
    (("10.0.0.1",), State.ACTIVE), (("10.0.0.2",), State.BLOCKED),
    (("10.0.1.0/24", "2001:db8::1"), State.WARN), (("10.0.0.4",), State.PAUSED),
    (("2001:db8:1::/56",), State.DISABLED), (("10.0.0.6",), State.BLOCKED)])}


def test_arrivals_equal_transitions_from_nothing() -> None:
    final = {a: s.state for a, s in SUBS.items()}
    final["a5"] = State.ACTIVE  # an override releases it
    want = transitions({}, SUBS, lambda s: s.state, lambda s: final[s.account], NOW, "billing")
    got = arrivals(SUBS, final, NOW, "billing")
    assert got == want
    assert [t.account for t in got] == ["a1", "a2", "a3", "a4"]


def test_bulk_desired_equals_desired() -> None:
    subs = list(SUBS.values())
    assert build_desired_bulk(subs, [s.state for s in subs]) == build_desired(subs)
    hosts = [s for s in subs if s.addresses[0].count(".") == 3 and "/" not in s.addresses[0]]
    assert build_desired_bulk(hosts, [s.state for s in hosts]) == build_desired(hosts)
