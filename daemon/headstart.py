"""The head start of a cold snapshot: the hosts it surely restricts, found cheaply (pure).

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
"""

from __future__ import annotations

import operator
import re
import socket
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from itertools import chain, compress, repeat
from typing import Any

from .core.reconcile import Plan, SetDelta
from .core.sets import CATEGORY_OF_STATE, SET_NAMES
from .model import State
from .sources.base import Columns
from .validate import _CONVERT, Policy
from .validate_bulk import plain_rows

RESTRICTING = frozenset(s.value for s in State if s is not State.ACTIVE)
"""State texts whose addresses go into an enforcement set."""
_V4_PREFIX_LINE = re.compile(r"(?m)^[^:\n]*/[^:\n]*$")


def head_start(cols: Columns, policy: Policy, skip: AbstractSet[str] = frozenset()
               ) -> tuple[list[str], list[State]]:
    """The IPv4 hosts ``cols`` surely restricts and their states, in row order."""
    indices = list(compress(range(len(cols)), map(RESTRICTING.__contains__, cols.state)))
    rows = plain_rows(cols, indices, _CONVERT)
    if rows is None:
        return [], []
    hosts, states = rows.addresses, rows.states
    drop: set[int] = set()  # positions in ``hosts``
    # Rows of one account are all left out by plain_rows: with every row kept, none repeats.
    twice = _repeated(cols.account) if len(rows.indices) != len(cols) else set()
    if twice or skip:
        drop.update(i for i, acc in enumerate(rows.account) if acc in twice or acc in skip)
    flat = _flatten(cols.addresses)
    twice = _repeated(flat)
    if twice:
        drop.update(i for i, host in enumerate(hosts) if host in twice)
    around = _v4_prefixes(flat)
    if around:
        drop.update(compress(range(len(hosts)), _inside(hosts, around)))
    if policy.serves:
        served = [net for net in policy.serves if net.version == 4]
        drop.update(compress(range(len(hosts)), map(operator.not_, _inside(hosts, served))))
    if drop:
        keep = [i not in drop for i in range(len(hosts))]
        hosts, states = list(compress(hosts, keep)), list(compress(states, keep))
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


def _flatten(values: Sequence[Any]) -> list[Any]:
    """The address texts of a column whose cells are texts or lists of texts."""
    if list in set(map(type, values)):
        return list(chain.from_iterable(v if type(v) is list else (v,) for v in values))
    return list(values)


def _repeated(values: Sequence[Any]) -> set[Any]:
    """The texts that occur more than once (NULLs and unhashable garbage ignored)."""
    try:
        distinct = len(set(values))
    except TypeError:
        values = [v for v in values if type(v) is str]
        distinct = len(set(values))
    if distinct == len(values):
        return set()
    nulls = values.count(None)
    if distinct == len(values) - nulls + 1:
        return set()
    return {v for v, n in Counter(values).items() if n > 1 and v is not None}


def _v4_prefixes(values: Sequence[Any]) -> list[Any]:
    """Every IPv4 network written with a length in ``values`` (leniently parsed)."""
    import ipaddress  # noqa: PLC0415 - only when some prefix exists

    try:
        joined = "\n".join(values)
    except TypeError:
        joined = "\n".join(v for v in values if type(v) is str)
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
