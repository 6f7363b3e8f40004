"""Validating a change feed's rows against the inventory (pure).

A delta's rows are validated like a snapshot's (the same rules, the same bulk paths for
rows in columns), then checked against the accounts the delta does not carry: an
address already held by another account is refused and the account keeps its last
good version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .inventory import Inventory, PreviousView
from .model import Rejection, Subscriber
from .sources.base import Columns, Row
from .validate import Outcome, Policy, validate_batch

BULK_CHANGE = 2000
"""Above this many rows, the inventory's versions of the rows' accounts are a lazy view."""


def previous_versions(rows: Sequence[Row], inventory: Inventory) -> Mapping[str, Subscriber]:
    """The inventory's subscribers of the rows' accounts."""
    if isinstance(rows, Columns):
        keys = {a for a in rows.account if a is not None}
        return PreviousView(inventory, keys) if len(keys) > BULK_CHANGE else {
            a: sub for a in keys if (sub := inventory.get(a)) is not None}
    if len(rows) > BULK_CHANGE:
        return PreviousView(inventory, {
            str(row.get("account")) for row in rows if isinstance(row, Mapping)})
    previous: dict[str, Subscriber] = {}
    for row in rows:
        old = inventory.get(str(row.get("account"))) if isinstance(row, Mapping) else None
        if old is not None:
            previous[old.account] = old
    return previous


def validate_delta(rows: Sequence[Row], policy: Policy, inventory: Inventory) -> Outcome:
    """The new versions of a delta's accounts (``Outcome.subscribers``; lean rows are
    built as subscribers) and the rejections, conflicts with other accounts included."""
    previous = previous_versions(rows, inventory)
    outcome = validate_batch(rows, policy, previous)
    if outcome.lean:  # rows in columns: active one-host rows come back lean
        lean_subscriber = inventory.lean_subscriber
        outcome.subscribers.update(
            (account, lean_subscriber(account, host)) for account, host in outcome.lean.items())
        outcome.lean = {}
    subs = outcome.subscribers
    for account, clash in inventory.clashes(subs.values()).items():
        del subs[account]
        old = previous.get(account)
        if old is not None:
            subs[account] = old
        outcome.rejections.append(Rejection(
            account, "address_conflict", f"address {clash} is held by another account"))
    return outcome
