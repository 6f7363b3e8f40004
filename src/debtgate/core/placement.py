"""Moving many accounts between the desired sets at once (pure).

A month-start storm moves 100,000 accounts, nearly all of them active and *lean* (one
host, no placement): their old placement is nothing and their new one is a host set.
Those are placed with C loops (one ``set.update`` per set); the other accounts take the
account-by-account path first, so an address one of them releases is free before a lean
account takes it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, MutableMapping
from itertools import chain, compress, repeat

from debtgate.core.desired import elements_by_set
from debtgate.core.sets import CATEGORY_OF_STATE, SET_NAMES
from debtgate.model import State, Subscriber

Held = tuple[tuple[str, ...], State]
"""An account's old addresses and old placement."""
Undo = list[tuple[str, str, bool]]
"""(set, element, was added), in order: how to roll the desired sets back."""


def _place(desired: MutableMapping[str, set[str]], account: str, held: Held | None,
           new: Subscriber | None, state: State | None, scope: set[str], undo: Undo) -> None:
    names, category_of = SET_NAMES, CATEGORY_OF_STATE.get
    if held is not None:
        category = category_of(held[1])
        if category is not None:
            for addr in held[0]:
                name = names[category, ":" in addr, "/" in addr]
                target = desired[name]
                if addr in target:
                    target.discard(addr)
                    undo.append((name, addr, False))
                scope.add(addr)
    if new is not None and state is not None:
        category = category_of(state)
        if category is not None:
            for addr in new.addresses:
                name = names[category, ":" in addr, "/" in addr]
                target = desired[name]
                if addr not in target:
                    target.add(addr)
                    undo.append((name, addr, True))
            scope.update(new.addresses)


def place_many(desired: MutableMapping[str, set[str]], full: Mapping[str, Subscriber],
               lean: Mapping[str, str], placed: Callable[[str], State | None],
               other: Mapping[str, State] | None, subs: Mapping[str, Subscriber],
               gone: list[str], final: Mapping[str, State]
               ) -> tuple[set[str], Undo, dict[str, Held]]:
    """Each account's old placement out of ``desired``, its new one in. Returns the
    touched elements (the reconcile's scope), the undo list and the old placements of
    the accounts the inventory held. ``placed``: an account's placement; ``other``: the
    stored non-active placements (None: no fast path)."""
    scope: set[str] = set()
    undo: Undo = []
    olds: dict[str, Held] = {}
    accounts = list(subs)
    quick: list[bool] = [False] * len(accounts)
    if other is not None and not gone:
        # Lean or new, no stored placement: nothing to take out.
        in_full = map(full.__contains__, accounts)
        stored = map(other.__contains__, accounts)
        quick = list(map(operator.not_, map(operator.or_, in_full, stored)))
    for account in chain(compress(accounts, map(operator.not_, quick)), dict.fromkeys(gone)):
        old = full.get(account)
        held: Held | None = None
        if old is not None:
            held = (old.addresses, placed(account) or old.state)
        else:
            host = lean.get(account)
            if host is not None:
                held = ((host,) if host else (), placed(account) or State.ACTIVE)
        if held is not None:
            olds[account] = held
        _place(desired, account, held, subs.get(account), final.get(account), scope, undo)
    if any(quick):
        _place_lean(desired, lean, list(compress(accounts, quick)), subs, final, scope, undo,
                    olds)
    return scope, undo, olds


def _place_lean(desired: MutableMapping[str, set[str]], lean: Mapping[str, str],
                accounts: list[str], subs: Mapping[str, Subscriber],
                final: Mapping[str, State], scope: set[str], undo: Undo,
                olds: dict[str, Held]) -> None:
    """Accounts that were lean (active, placed nowhere) or are new."""
    hosts = list(map(lean.get, accounts))
    active = State.ACTIVE
    for account, host in zip(accounts, hosts, strict=True):
        if host is not None:
            olds[account] = ((host,) if host else (), active)
    states = list(map(final.__getitem__, accounts))
    news = list(map(subs.__getitem__, accounts))
    for name, elems in elements_by_set(news, states).items():
        target = desired[name]
        fresh = set(elems).difference(target)
        target.update(fresh)
        undo.extend(zip(repeat(name), fresh, repeat(True)))
        scope.update(elems)
