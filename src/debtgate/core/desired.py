"""What the kernel should hold, derived from subscribers (pure)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, compress, repeat

from debtgate.core.sets import CATEGORY_OF_STATE, ENFORCEMENT_SETS, SET_NAMES, Category, set_name
from debtgate.model import State, Subscriber

StateOf = Callable[[Subscriber], State]
"""The effective state of a subscriber (billing state, unless an override says otherwise)."""


def billing_state(sub: Subscriber) -> State:
    return sub.state


def placements(sub: Subscriber, state: State) -> list[tuple[str, str]]:
    """(set name, element) for each address of a subscriber in a state."""
    category = CATEGORY_OF_STATE.get(state)
    if category is None:
        return []
    return [(set_name(category, addr), addr) for addr in sub.addresses]


def empty_sets(names: Iterable[str] = ENFORCEMENT_SETS) -> dict[str, set[str]]:
    return {name: set() for name in names}


def build_desired(subs: Iterable[Subscriber], state_of: StateOf = billing_state
                  ) -> dict[str, set[str]]:
    """The full content of every enforcement set."""
    sets = empty_sets()
    active, category_of, names = State.ACTIVE, CATEGORY_OF_STATE.get, SET_NAMES
    for sub in subs:
        state = state_of(sub)
        if state is active:
            continue
        category = category_of(state)
        if category is None:
            continue
        for elem in sub.addresses:  # placements(), inlined
            sets[names[category, ":" in elem, "/" in elem]].add(elem)
    return sets


_ADDRESSES = operator.attrgetter("addresses")


def elements_by_set(subs: Sequence[Subscriber], states: Sequence[State]
                    ) -> dict[str, list[str]]:
    """The elements each enforcement set gets from ``subs`` placed in ``states`` (same
    order): the subscribers of each category are picked with C loops, and when all of
    their addresses are IPv4 hosts (the usual case) they go to the host set in one piece."""
    out: dict[str, list[str]] = {}
    names = SET_NAMES
    by_category: dict[Category, list[Subscriber]] = {}
    for state, category in CATEGORY_OF_STATE.items():
        if state in states:
            picked = list(compress(subs, map(operator.is_, states, repeat(state))))
            by_category.setdefault(category, []).extend(picked)
    for category, members in by_category.items():
        elems = list(chain.from_iterable(map(_ADDRESSES, members)))
        joined = "".join(elems)
        if "/" not in joined and ":" not in joined:
            out.setdefault(names[category, False, False], []).extend(elems)
            continue
        for elem in elems:
            out.setdefault(names[category, ":" in elem, "/" in elem], []).append(elem)
    return out


def build_desired_bulk(subs: Sequence[Subscriber], states: Sequence[State]
                       ) -> dict[str, set[str]]:
    """:func:`build_desired` for many subscribers with their states given in the same
    order (see :func:`elements_by_set`)."""
    sets = empty_sets()
    for name, elems in elements_by_set(subs, states).items():
        sets[name].update(elems)
    return sets


def update_desired(
    sets: dict[str, set[str]],
    old: Subscriber | None,
    old_state: State | None,
    new: Subscriber | None,
    new_state: State | None,
) -> set[str]:
    """Move one account from its old placement to its new one in ``sets``.

    Returns the touched elements: the scope for :func:`~debtgate.core.reconcile.reconcile`.
    """
    touched: set[str] = set()
    if old is not None and old_state is not None:
        for name, elem in placements(old, old_state):
            sets[name].discard(elem)
            touched.add(elem)
    if new is not None and new_state is not None:
        for name, elem in placements(new, new_state):
            sets[name].add(elem)
            touched.add(elem)
    return touched


def garden_desired(garden: Iterable[str], resolvers: Iterable[str]) -> dict[str, set[str]]:
    """The config-derived sets: walled garden CIDRs and DNS resolvers."""
    sets: dict[str, set[str]] = {n: set() for n in
                                 ("garden_v4", "garden_v6", "resolvers_v4", "resolvers_v6")}
    for elem in garden:
        sets["garden_v6" if ":" in elem else "garden_v4"].add(elem)
    for elem in resolvers:
        sets["resolvers_v6" if ":" in elem else "resolvers_v4"].add(elem)
    return sets


def where_is(sets: Mapping[str, set[str]], elem: str) -> list[str]:
    """The sets that hold an element (for explain)."""
    return [name for name, content in sets.items() if elem in content]
