"""Desired vs actual set content in, the exact set changes out (pure).

``reconcile(desired, actual, now)`` never touches the kernel: the nft adapter
turns the :class:`Plan` into one transaction, and the engine records it as
committed once the kernel accepted it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime

from debtgate.core.sets import ENFORCEMENT_SETS

SetState = Mapping[str, AbstractSet[str]]


@dataclass(frozen=True, slots=True)
class SetDelta:
    """Changes to one set."""

    name: str
    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    whole: tuple[str, ...] | None = None
    """The set's whole new content, when an added interval overlaps a deleted one
    (a prefix carved into pieces, or pieces joined again): nft 1.0.6 checks overlaps
    against the set as it was before the transaction, so the set is flushed and
    refilled in the same transaction instead (still atomic)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The exact kernel changes to make, in one transaction."""

    at: datetime
    changes: tuple[SetDelta, ...] = ()
    conntrack: tuple[str, ...] = ()
    """Addresses (hosts or prefixes) whose connection tracking entries must be cut."""
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def writes(self) -> int:
        return sum(len(d.add) + len(d.delete) for d in self.changes)

    def additions(self) -> Plan:
        """This plan without its deletions (an add-only head start): only the added
        elements are cut from conntrack."""
        changes = tuple(SetDelta(d.name, add=d.add) for d in self.changes if d.add)
        return Plan(at=self.at, changes=changes,
                    conntrack=_ordered({e for d in changes for e in d.add}))

    def adds(self, name: str) -> tuple[str, ...]:
        return next((d.add for d in self.changes if d.name == name), ())

    def deletes(self, name: str) -> tuple[str, ...]:
        return next((d.delete for d in self.changes if d.name == name), ())


_EMPTY: frozenset[str] = frozenset()


def reconcile(
    desired: SetState,
    actual: SetState,
    now: datetime,
    scope: Collection[str] | None = None,
    cut_sets: AbstractSet[str] = frozenset(ENFORCEMENT_SETS),
) -> Plan:
    """The set changes that turn ``actual`` into ``desired``.

    With ``scope``, only those elements are compared (an incremental change:
    the cost follows the change, not the size of the sets). An element that
    moves between two sets of ``cut_sets``, or enters or leaves one, is listed
    for a conntrack cut.
    """
    changes: list[SetDelta] = []
    cut: set[str] = set()
    scope_set: AbstractSet[str] | None = None
    if scope is not None:
        scope_set = scope if isinstance(scope, set | frozenset) else frozenset(scope)
    for name in sorted(set(desired) | set(actual)):
        want = desired.get(name, _EMPTY)
        have = actual.get(name, _EMPTY)
        if scope_set is None:
            add = want - have
            delete = have - want
        elif not want and not have:
            continue
        else:
            # The scope's elements in one set and not the other (C loops over the smaller).
            add = _within(scope_set, want) - have
            delete = _within(scope_set, have) - want
        if add or delete:
            whole = (_ordered(set(want)) if name.endswith("_net") and name in cut_sets
                     and add and delete and _overlap(add, delete) else None)
            changes.append(SetDelta(name, _ordered(add), _ordered(delete), whole))
            if name in cut_sets:
                cut.update(add)
                cut.update(delete)
    return Plan(at=now, changes=tuple(changes), conntrack=_ordered(cut))


SORT_MAX = 10_000
"""Plans list up to this many elements per set in sorted order (readable logs and
tests); larger ones keep set order: sorting 100,000 texts would cost about a fifth of
their whole transaction."""


def _ordered(elements: AbstractSet[str]) -> tuple[str, ...]:
    return tuple(sorted(elements)) if len(elements) <= SORT_MAX else tuple(elements)


def _overlap(add: AbstractSet[str], delete: AbstractSet[str]) -> bool:
    """Whether an added prefix overlaps a deleted one (the cheap test: sizes are small)."""
    added = [ipaddress.ip_network(a) for a in add]
    for d in delete:
        net = ipaddress.ip_network(d)
        if any(a.version == net.version and a.overlaps(net) for a in added):
            return True
    return False


def _within(scope: AbstractSet[str], content: AbstractSet[str]) -> AbstractSet[str]:
    if isinstance(content, set | frozenset):
        return scope & content
    return {e for e in scope if e in content}


def commit(actual: dict[str, set[str]], plan: Plan) -> None:
    """Record a plan the kernel accepted into the committed state."""
    for delta in plan.changes:
        content = actual.setdefault(delta.name, set())
        if delta.whole is not None:
            content.clear()
            content.update(delta.whole)
            continue
        content.difference_update(delta.delete)
        content.update(delta.add)
