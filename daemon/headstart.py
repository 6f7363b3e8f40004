"""The head start of a cold snapshot or a storm: the hosts it surely restricts, found
cheaply (pure).

When a gateway starts with nothing enforced, every restricting row of the first
snapshot is waiting on the validation of all the others. This module picks, with
column checks only (no :class:`~debtgate.model.Subscriber` built, no inventory), the
rows that full validation is bound to accept as they are and that restrict: a plain
account, one plain IPv4 host, a restricting state, display fields that convert, no
RADIUS session, no other row naming the same account or address, no IPv4 prefix of
the snapshot around the host, inside this gateway's ``serves``, no override or held
change on the account. The engine enforces those add-only while the snapshot is
validated; the snapshot then decides everything and finds them committed. A row in
any doubt is simply left to the snapshot (a second later, not wrong).

The parts of a large change (a storm, :class:`~debtgate.sources.base.DeltaAhead`)
go through the same checks, then through :func:`unclaimed`: the gateway already
holds an inventory, so a host must be free (or the account's own) and the account
not placed restricted already; the rows of one part are checked against each other
only, so the engine keeps the set of hosts earlier parts took (an account is in one
part at most), and the Delta reconciles those hosts too (taking back one it does not
keep).
"""

from __future__ import annotations

import itertools
import operator
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from itertools import chain, compress, repeat
from typing import Any, NamedTuple

from .core.reconcile import Plan, SetDelta
from .core.sets import CATEGORY_OF_STATE, SET_NAMES
from .model import State
from .sources.base import Columns
from .validate import _CONVERT, Policy
from .validate_bulk import plain_rows, repeated

RESTRICTING = frozenset(s.value for s in State if s is not State.ACTIVE)
"""State texts whose addresses go into an enforcement set."""
_V4_PREFIX_LINE = re.compile(r"(?m)^[^:\n]*/[^:\n]*$")


SLICE = 25_000
"""Rows per head-start transaction: the kernel inserts one slice while the next is
checked (two cores at work instead of one). The first slice is a fifth of that, so
the kernel starts early."""

Slice = tuple[list[str], list[State]]


class HeadSlice(NamedTuple):
    hosts: list[str]
    states: list[State]
    rows: list[int]
    """Indices (in ``cols``) of the rows the hosts come from."""


def head_slices(cols: Columns, policy: Policy, skip: AbstractSet[str] = frozenset(),
                size: int = SLICE, first: int | None = None) -> Iterator[HeadSlice]:
    """The IPv4 hosts ``cols`` surely restricts and their states, in row order, in
    slices of the restricting rows (``first`` rows, by default a fifth of ``size``,
    then ``size`` rows each; a slice may come out empty)."""
    indices = list(compress(range(len(cols)), map(RESTRICTING.__contains__, cols.state)))
    if not indices:
        return
    # What other rows could claim: the same account, the same host, a prefix around it.
    accounts_twice = repeated(cols.account)
    try:
        hosts_twice = repeated(cols.addresses)
        around = _v4_prefixes(cols.addresses)
    except TypeError:  # some row holds a list of addresses (or garbage)
        cells: list[Any] = cols.addresses
        flat = [x for v in cells for x in (v if type(v) is list else (v,)) if type(x) is str]
        hosts_twice, around = repeated(flat), _v4_prefixes(flat)
        del flat
    served = [net for net in policy.serves if net.version == 4] if policy.serves else None
    start = max(size // 5 if first is None else first, 1)
    bounds = [0, *range(start, len(indices), size), len(indices)]
    for at, end in itertools.pairwise(bounds):
        # Repeated accounts (anywhere in cols) are dropped below: not checked twice.
        rows = plain_rows(cols, indices[at:end], _CONVERT, distinct=True)
        if rows is None:
            yield HeadSlice([], [], [])
            continue
        hosts, states, taken = rows.addresses, rows.states, rows.indices
        drop: set[int] = set()  # positions in ``hosts``
        if accounts_twice or skip:
            drop.update(i for i, acc in enumerate(rows.account)
                        if acc in accounts_twice or acc in skip)
        if hosts_twice:
            drop.update(i for i, host in enumerate(hosts) if host in hosts_twice)
        if around:
            drop.update(compress(range(len(hosts)), _inside(hosts, around)))
        if served is not None:
            drop.update(compress(range(len(hosts)), map(operator.not_, _inside(hosts, served))))
        if drop:
            keep = [i not in drop for i in range(len(hosts))]
            hosts, states = list(compress(hosts, keep)), list(compress(states, keep))
            taken = list(compress(taken, keep))
        yield HeadSlice(hosts, states, taken)


def unclaimed(got: HeadSlice, accounts: Sequence[str | None],
              owners: Callable[[Sequence[str]], list[str | None]],
              restricted: AbstractSet[str], taken: set[str]) -> HeadSlice:
    """The rows of a slice of a *change* that its Delta is bound to place as they say,
    given what the gateway holds: no other account holds the host (nor a prefix of
    another around it: ``owners``), the account is not placed restricted already
    (not in ``restricted``: it is active, or new) and no earlier part of the same
    change took the host (``taken``: the hosts earlier parts enforced ahead; an
    account is in one part of a change at most:
    :class:`~debtgate.sources.base.DeltaAhead`). The hosts kept are added to
    ``taken``."""
    if not got.rows:
        return got
    names: list[Any] = list(map(accounts.__getitem__, got.rows))
    hosts = got.hosts
    # The accounts and hosts of one slice are distinct (head_slices).
    holders = owners(hosts)
    if holders == names and None not in names and restricted.isdisjoint(names):
        # A storm: every host its own account's. An earlier part can only have taken
        # a host for its holder, whose rows are all in this part: none was taken.
        kept = got
    else:  # one C loop each
        free = map(operator.or_, map(operator.is_, holders, repeat(None)),
                   map(operator.eq, holders, names))
        fresh = map(operator.not_, map(taken.__contains__, hosts))
        settled = map(operator.not_, map(restricted.__contains__, names))
        keep = list(map(operator.and_, map(operator.and_, free, fresh), settled))
        if None in names:
            keep = list(map(operator.and_, keep, map(operator.is_not, names, repeat(None))))
        kept = HeadSlice(list(compress(hosts, keep)), list(compress(got.states, keep)),
                         list(compress(got.rows, keep)))
    taken.update(kept.hosts)
    return kept


def head_start(cols: Columns, policy: Policy, skip: AbstractSet[str] = frozenset()
               ) -> Slice:
    """Every slice of :func:`head_slices` in one."""
    hosts: list[str] = []
    states: list[State] = []
    for more_hosts, more_states, _ in head_slices(cols, policy, skip):
        hosts += more_hosts
        states += more_states
    return hosts, states


def elements(hosts: Sequence[str], states: Sequence[State]) -> dict[str, set[str]]:
    """The host sets' elements for IPv4 ``hosts`` in ``states`` (same order)."""
    out: dict[str, set[str]] = {}
    if states and states.count(states[0]) == len(states):  # one state (a storm, a test)
        category = CATEGORY_OF_STATE.get(states[0])
        return {SET_NAMES[category, False, False]: set(hosts)} if category else {}
    for state, category in CATEGORY_OF_STATE.items():
        if state in states:
            picked = compress(hosts, map(operator.is_, states, repeat(state)))
            out.setdefault(SET_NAMES[category, False, False], set()).update(picked)
    return out


def _v4_prefixes(values: Sequence[Any]) -> list[Any]:
    """Every IPv4 network written with a length in ``values`` (leniently parsed)."""
    import ipaddress  # noqa: PLC0415 - only when some prefix exists

    joined = "\n".join(v for v in values if type(v) is str) if None in values else \
        "\n".join(values)  # TypeError for a list, a number
    if "/" not in joined:
        return []
    nets = []
    for text in _V4_PREFIX_LINE.findall(joined):
        try:
            nets.append(ipaddress.IPv4Network(text.strip(), strict=False))
        except ValueError:
            continue  # the row is rejected by validation: no containment
    return nets


def _inside(hosts: Iterable[str], nets: Sequence[Any]) -> list[bool]:
    """For each plain IPv4 host, whether one of ``nets`` holds it."""
    ranges = [(int(net.network_address), int(net.netmask)) for net in nets]
    aton, of = socket.inet_aton, int.from_bytes
    out = []
    for host in hosts:
        value = of(aton(host), "big")
        out.append(any(value & mask == base for base, mask in ranges))
    return out


def head_plan(hosts: Sequence[str], states: Sequence[State],
              committed: Mapping[str, AbstractSet[str]], now: datetime) -> Plan:
    """The add-only plan that puts ``hosts`` (in ``states``) where they are not yet;
    every added host is cut from conntrack (the hosts are distinct)."""
    changes = []
    for name, want in sorted(elements(hosts, states).items()):
        have = committed.get(name)
        add = want - have if have else want
        if add:
            changes.append(SetDelta(name, add=tuple(add)))
    return Plan(at=now, changes=tuple(changes),
                conntrack=tuple(chain.from_iterable(d.add for d in changes)))
