"""A delta in columns has the outcome of the same delta as rows (engine with fakes)."""

from __future__ import annotations

from typing import Any

import pytest

from debtgate.billing.base import Delta
from debtgate.core.guard import GuardPolicy
from debtgate.model import State
from tests.unit.helpers import Harness, columns, row

EXTRAS = ("amount_due", "name", "nas")


BASE = [row(f"a{i}", f"10.0.{i // 200}.{i % 200 + 1}", "active") for i in range(3000)]
DELTA = [
    *[row(f"a{i}", f"10.0.{i // 200}.{i % 200 + 1}", "blocked", amount_due="700",
          name=f"N{i}") for i in range(0, 2600)],
    row("a2700", "10.0.0.5", "blocked"),            # a5's address: refused, keeps its own
    row("a2701", "10.9.9.9", "active"),              # moves while active
    row("new1", "10.8.0.1", "paused", nas="bras1"),  # a newcomer with a session
    row("a2702", "bad address", "blocked"),          # rejected, keeps its last version
    row("a2703", "10.0.14.1", "blocked"),            # a2800's (not in the delta): refused
]


@pytest.mark.parametrize("as_columns", [False, True])
async def test_bulk_delta_as_rows_or_columns(as_columns: bool) -> None:
    h = Harness()
    h.engine.guard = GuardPolicy(enabled=False)
    await h.snapshot(*BASE)
    rows: Any = columns(DELTA, EXTRAS, active_extras=False) if as_columns else DELTA
    await h.engine.handle(Delta(rows, gone=("a2999",)))
    await h.engine.announcer.announced()
    blocked = h.nft.sets["blocked_v4_host"]
    assert len(blocked) == 2600 and "10.0.0.1" in blocked
    assert h.nft.sets["locked_v4_host"] == {"10.8.0.1"}
    inv = h.engine.inventory
    assert inv.get("a2700") is not None and inv.get("a2700").addresses == ("10.0.13.101",)  # type: ignore[union-attr]
    assert inv.get("a2701").addresses == ("10.9.9.9",)  # type: ignore[union-attr]
    assert inv.get("a2702").state is State.ACTIVE  # type: ignore[union-attr]
    assert inv.get("a2999") is None
    assert inv.get("new1").session is not None  # type: ignore[union-attr]
    assert inv.get("a7").name == "N7"  # type: ignore[union-attr]
    assert h.engine.rejections == {"address_conflict": 2, "bad_address": 1}
    assert inv.get("a2703").addresses == ("10.0.13.104",)  # type: ignore[union-attr]
    assert inv.owner("10.0.14.1") == "a2800"
    assert sum(1 for t in h.transitions if t.new is State.BLOCKED) == 2600


@pytest.mark.parametrize("with_prefix", [False, True])
def test_clashes_equal_claimed_by_other(with_prefix: bool) -> None:
    from debtgate.enforce.inventory import Inventory
    from debtgate.model import Subscriber

    inv = Inventory()
    held = {"h1": Subscriber("h1", ("10.0.0.1",), State.ACTIVE),
            "h2": Subscriber("h2", ("10.0.0.2", "2001:db8::2"), State.BLOCKED)}
    if with_prefix:
        held["p"] = Subscriber("p", ("10.9.0.0/24",), State.BLOCKED)
    inv.replace_all(held)
    one_host = [Subscriber("x", ("10.0.0.1",), State.BLOCKED),
                Subscriber("h1", ("10.0.0.1",), State.BLOCKED),
                Subscriber("y", ("10.0.0.9",), State.BLOCKED)]
    mixed = [*one_host, Subscriber("z", ("10.0.0.7", "2001:db8::2"), State.WARN),
             Subscriber("w", ("10.9.0.5",), State.BLOCKED)]
    for subs in (one_host, mixed):
        want = {s.account: c for s in subs if (c := inv.claimed_by_other(s)) is not None}
        assert inv.clashes(subs) == want
    assert inv.clashes(one_host) == {"x": "10.0.0.1"}
