"""Validating a change feed's rows against the inventory (pure).

A delta's rows are validated like a snapshot's (the same rules, the same bulk paths for
rows in columns), then checked against the accounts the delta does not carry: an
address already held by another account is refused and the account keeps its last
good version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from msgspec.structs import replace

from debtgate.billing.base import Columns, Row
from debtgate.billing.rows import Policy
from debtgate.billing.validate import Outcome, carved_detail, validate_batch
from debtgate.core.carve import carve_addresses
from debtgate.enforce.inventory import Inventory, PreviousView
from debtgate.model import Rejection, Subscriber

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


def validate_delta(rows: Sequence[Row], policy: Policy, inventory: Inventory,
                   gone: Collection[str] = ()) -> Outcome:
    """The new versions of a delta's accounts (``Outcome.subscribers``; lean rows are
    built as subscribers) and the rejections, conflicts with other accounts included:
    an address another account holds exactly is refused (the holder keeps it); a
    narrower claim inside another account's prefix wins, and the prefix is carved
    around it (the prefix's account then gets a new version in the outcome too)."""
    outcome = validate_rows_of(rows, policy, inventory)
    check_against(outcome, inventory, gone)
    return outcome


def validate_rows_of(rows: Sequence[Row], policy: Policy, inventory: Inventory) -> Outcome:
    """The first half of :func:`validate_delta`: the rows among themselves (reads the
    inventory only for the accounts' previous versions, so it may run in a thread)."""
    previous = previous_versions(rows, inventory)
    outcome = validate_batch(rows, policy, previous)
    if outcome.lean:  # rows in columns: active one-host rows come back lean
        lean_subscriber = inventory.lean_subscriber
        outcome.subscribers.update(
            (account, lean_subscriber(account, host)) for account, host in outcome.lean.items())
        outcome.lean = {}
    return outcome


def check_against(outcome: Outcome, inventory: Inventory, gone: Collection[str] = ()) -> None:
    """The second half of :func:`validate_delta`: the outcome's subscribers against the
    accounts the change does not carry (on the loop: the inventory as it is now)."""
    prefixes = check_clashes(outcome, inventory, list(outcome.subscribers.values()))
    carve_if_needed(outcome, inventory, gone, prefixes)


def check_clashes(outcome: Outcome, inventory: Inventory, part: Sequence[Subscriber]) -> bool:
    """:func:`check_against`'s exact-address half for ``part`` of the outcome's
    subscribers (a large change checks its subscribers a slice at a time: 100,000 at
    once held the loop for 0.15-0.27 s at 1,000,000 subscribers, and a payment's
    notification with it); returns whether ``part`` carries a prefix (then
    :func:`carve_against` must follow, once, over the whole outcome)."""
    subs = outcome.subscribers
    for account, clash in inventory.clashes(part).items():
        del subs[account]
        old = inventory.get(account)
        if old is not None:
            subs[account] = old
        outcome.rejections.append(Rejection(
            account, "address_conflict", f"address {clash} is held by another account"))
    return any("/" in a for sub in part for a in sub.addresses)


def carve_if_needed(outcome: Outcome, inventory: Inventory, gone: Collection[str],
                    prefixes: bool) -> bool:
    """:func:`check_against`'s prefix half, once :func:`check_clashes` has seen every
    subscriber (``prefixes``: whether any carried a prefix): containment is carved only
    when a prefix is involved. Returns whether the outcome then carries a prefix (its
    accounts must be applied together)."""
    if not (prefixes or inventory.has_prefixes()):
        return False
    carve_against(outcome, inventory, {*outcome.subscribers, *gone})
    return any("/" in a for sub in outcome.subscribers.values() for a in sub.addresses)


def carve_against(outcome: Outcome, inventory: Inventory, changing: Collection[str]) -> None:
    """Containment between a delta's subscribers and the accounts it does not change."""
    subs = outcome.subscribers
    holes: dict[str, dict[str, list[tuple[str, str]]]] = {}  # account -> prefix -> holes
    mine = {a: sub.account for sub in subs.values() for a in sub.addresses if "/" in a}
    for prefix, inside in inventory.covered(mine).items():
        for elem, holder in inside:
            if holder != mine[prefix] and holder not in changing:
                holes.setdefault(mine[prefix], {}).setdefault(prefix, []).append((elem, holder))
    claims = [(addr, sub.account) for sub in subs.values() for addr in sub.addresses]
    claimant = dict(claims)
    for addr, owner, prefix in inventory.covering_many(claimant):
        account = claimant[addr]
        if owner != account and owner not in changing:
            holes.setdefault(owner, {}).setdefault(prefix, []).append((addr, account))
    for account, covered in holes.items():
        current = subs.get(account) or inventory.get(account)
        if current is None:
            continue
        cut = [elem for hs in covered.values() for elem, _ in hs]
        subs[account] = replace(current, addresses=carve_addresses(current.addresses, cut))
        for prefix, hs in covered.items():
            outcome.rejections.append(Rejection(account, "address_conflict",
                                                carved_detail(prefix, hs)))
