"""A restart recalls the persisted restricted subscribers the kernel still holds (pure:
the fake kernel), so a payment before the first snapshot moves its account at once."""

from __future__ import annotations

from debtgate.model import State, Subscriber
from tests.unit.helpers import Harness, row


async def test_recall_keeps_what_the_kernel_holds_and_a_payment_moves_it_at_once() -> None:
    h = Harness()
    eng = h.engine
    # The kernel as a restart adopts it: A-1 blocked, A-3 locked by an override.
    eng.committed["blocked_v4_host"] = {"100.64.1.1"}
    eng.committed["locked_v4_host"] = {"100.64.1.3"}
    persisted = [
        Subscriber("A-1", ("100.64.1.1",), State.BLOCKED),
        Subscriber("A-2", ("100.64.1.2",), State.BLOCKED),  # paid after the file was written
    ]
    assert eng.recall(persisted) == 1
    assert eng.inventory.get("A-1") == persisted[0] and eng.inventory.get("A-2") is None
    assert eng.placed == {"A-1": State.BLOCKED}
    assert eng.desired["locked_v4_host"] == {"100.64.1.3"}  # the kernel's, until billing says
    plan = await h.delta(row("A-1", "100.64.1.1", "active"))  # the payment
    assert plan is not None and eng.committed["blocked_v4_host"] == set()
    assert eng.committed["locked_v4_host"] == {"100.64.1.3"}
    [change] = h.transitions
    assert (change.account, change.old, change.new) == ("A-1", State.BLOCKED, State.ACTIVE)
