"""Account-level state changes, for RADIUS, the audit trail and explain (pure)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from itertools import compress, repeat
from typing import Any

import msgspec

from debtgate.model import State, Subscriber

_ACCOUNT = operator.attrgetter("account")


class Transition(msgspec.Struct, frozen=True, gc=False):
    """One account's change of effective state or addresses (a msgspec Struct: a storm
    or a cold start builds 100,000 of them)."""

    account: str
    old: State | None
    """None: the account is new to this gateway."""
    new: State | None
    """None: the account is gone from billing."""
    at: datetime
    cause: str
    old_addresses: tuple[str, ...] = ()
    new_addresses: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "old": str(self.old) if self.old else None,
            "new": str(self.new) if self.new else None,
            "at": self.at.isoformat(),
            "cause": self.cause,
            "addresses": list(self.new_addresses or self.old_addresses),
        }


def transitions(
    before: Mapping[str, Subscriber | None],
    after: Mapping[str, Subscriber | None],
    old_state_of: Callable[[Subscriber], State],
    new_state_of: Callable[[Subscriber], State],
    now: datetime,
    cause: str,
) -> list[Transition]:
    """Accounts whose effective state or addresses differ between two versions."""
    out: list[Transition] = []
    for account in before.keys() | after.keys():
        old = before.get(account)
        new = after.get(account)
        old_state = old_state_of(old) if old is not None else None
        new_state = new_state_of(new) if new is not None else None
        if old_state is new_state and (old is None or new is None
                                       or old.addresses == new.addresses):
            continue
        if old is None and new_state is State.ACTIVE:
            continue  # a paying newcomer is not news
        if new is None and old_state is State.ACTIVE:
            continue
        out.append(Transition(
            account, old_state, new_state, now, cause,
            old.addresses if old else (), new.addresses if new else ()))
    out.sort(key=_ACCOUNT)
    return out


def arrivals(subs: Mapping[str, Subscriber], final: Mapping[str, State], now: datetime,
             cause: str) -> list[Transition]:
    """:func:`transitions` from an empty inventory to ``subs`` placed as ``final``: every
    account not placed active is news (one pass, no per-account callbacks)."""
    active = State.ACTIVE
    out = [Transition(account, None, state, now, cause, (), sub.addresses)
           for (account, sub), state in zip(subs.items(), map(final.__getitem__, subs),
                                            strict=True)
           if state is not active]
    out.sort(key=_ACCOUNT)
    return out


def snapshot_candidates(old_full: Mapping[str, Subscriber], old_lean: Mapping[str, str],
                        new_full: Mapping[str, Subscriber], new_lean: Mapping[str, str]
                        ) -> set[str]:
    """Accounts that may have a transition between two inventories (pure).

    Lean accounts are active with one host: one that stays lean with the same host,
    arrives lean (a paying newcomer) or leaves while lean (an active one gone) is
    never news, so a resnapshot costs one dict lookup per lean account, in C loops.
    """
    out = set(old_full)
    out.update(new_full)
    if old_lean:
        out.update(lean_moves(list(new_lean), old_lean, new_lean))
    return out


def lean_moves(accounts: list[str], old_lean: Mapping[str, str],
               new_lean: Mapping[str, str]) -> Iterator[str]:
    """Which of ``accounts`` (lean in ``new_lean``) were lean with another host (C loops)."""
    olds = list(map(old_lean.get, accounts))
    return compress(accounts, map(operator.and_, map(operator.is_not, olds, repeat(None)),
                                  map(operator.ne, olds, map(new_lean.__getitem__, accounts))))


class History(Mapping[str, list[dict[str, Any]]]):
    """The last ``keep`` transitions of each account, compact: an account with one
    transition holds the :class:`Transition` itself (its time, cause and addresses
    are shared with the rest of its batch), more are a tuple. Read as dicts.

    At most ``total`` transitions are held: past it, the accounts whose last
    transition is oldest are forgotten until half of ``total`` remain (one pass, so
    each transition costs O(1) on average); the audit trail keeps every transition.
    Without the bound every storm round of the product benchmark (100,000 accounts
    blocked, then released, at 1,000,000 subscribers) left 200,000 more transitions
    held, up to ``keep`` per account: the storm's RSS peak rose 504 -> 810 MB over
    seven rounds."""

    __slots__ = ("_count", "_data", "keep", "total")

    def __init__(self, keep: int, total: int = 200_000) -> None:
        self.keep = keep
        self.total = total
        self._data: dict[str, Transition | tuple[Transition, ...]] = {}
        self._count = 0

    def add(self, change: Transition) -> None:
        data = self._data
        # Popped and put back: the dict's order is the order of the last transitions.
        held = data.pop(change.account, None)
        if held is None:
            data[change.account] = change
            self._count += 1
        elif isinstance(held, tuple):
            if len(held) < self.keep:
                self._count += 1
            data[change.account] = (*held[1 - self.keep:], change) if self.keep > 1 else (
                change,)
        elif self.keep > 1:
            data[change.account] = (held, change)
            self._count += 1
        else:
            data[change.account] = change
        if self._count > self.total:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        kept: list[tuple[str, Transition | tuple[Transition, ...]]] = []
        count, half = 0, self.total // 2
        for item in reversed(self._data.items()):
            n = len(item[1]) if type(item[1]) is tuple else 1
            if count + n > half and kept:
                break
            count += n
            kept.append(item)
        kept.reverse()
        self._data = dict(kept)
        self._count = count

    @property
    def transitions(self) -> int:
        """Transitions held (at most ``total``)."""
        return self._count

    def __getitem__(self, account: str) -> list[dict[str, Any]]:
        held = self._data[account]
        items = held if type(held) is tuple else (held,)
        return [t.as_dict() for t in items]  # type: ignore[union-attr]

    def __contains__(self, account: object) -> bool:
        return account in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)


def bulk_transitions(subs: Mapping[str, Subscriber], gone: Iterable[str],
                      olds: Mapping[str, tuple[tuple[str, ...], State]],
                      final: Mapping[str, State], now: datetime, cause: str
                      ) -> list[Transition]:
    """:func:`~debtgate.core.transitions.transitions` of a bulk change (same list)."""
    out: list[Transition] = []
    active = State.ACTIVE
    for account in {**subs, **dict.fromkeys(gone)}:
        held = olds.get(account)
        new = subs.get(account)
        old_state = held[1] if held is not None else None
        new_state = final[account] if new is not None else None
        if old_state is new_state and (held is None or new is None
                                       or held[0] == new.addresses):
            continue
        if held is None and new_state is active:
            continue  # a paying newcomer is not news
        if new is None and old_state is active:
            continue
        out.append(Transition(account, old_state, new_state, now, cause,
                              held[0] if held is not None else (),
                              new.addresses if new is not None else ()))
    out.sort(key=_ACCOUNT)
    return out
