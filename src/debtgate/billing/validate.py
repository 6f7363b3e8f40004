"""Billing rows in, subscribers or rejections out (pure).

Nothing a billing row contains can crash the daemon: every problem becomes a
:class:`~debtgate.model.Rejection` with a short reason (a metric label) and a
detail naming the offending value. A rejected row keeps the account's last
good version, so bad input loses nothing.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from msgspec.structs import replace

from debtgate.billing.base import Columns, Row
from debtgate.billing.rows import (
    NO_EXTRA,
    Policy,
    RowError,
    amount_of_row,
    cached_date,
    normalised,
    parse_plain,
    parse_row,
    text_of,
)
from debtgate.billing.validate_bulk import (
    LEAN_V4,
    bulk_lean,
    bulk_plain,
    served_prefixes,
)
from debtgate.core.carve import carve_addresses
from debtgate.model import Rejection, Subscriber


@dataclass(slots=True)
class Outcome:
    """The result of validating one batch of rows."""

    subscribers: dict[str, Subscriber] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    foreign_addresses: int = 0
    """Addresses outside this gateway's ``serves`` (enforced by another gateway)."""
    lean: dict[str, str] = field(default_factory=dict)
    """Active subscribers with one IPv4 host and nothing else to show: account -> host
    (kept compact by the inventory; see :func:`validate_columns`)."""
    foreign_accounts: list[str] = field(default_factory=list)
    """Accounts whose every address is outside ``serves``: another gateway's rows, not
    subscribers of this one (not in ``subscribers``, not counted by the guard)."""
    hosts: dict[str, str] | None = None
    """host -> account of the accepted rows, when no conflict had to be resolved
    (the inventory reuses it as its index)."""



def _refused(out: Outcome, exc: Exception, account: str | None,
             previous: Mapping[str, Subscriber], seen: set[str],
             into: dict[str, Subscriber], lean: Mapping[str, str]) -> None:
    """A row that did not parse: rejected, and its account keeps its last good version."""
    reason = exc.reason if isinstance(exc, RowError) else "bad_row"
    detail = exc.detail if isinstance(exc, RowError) else f"unreadable row: {exc}"
    out.rejections.append(Rejection(account or None, reason, detail))
    if account and account in previous and account not in seen and account not in lean:
        into[account] = previous[account]
    if account:
        seen.add(account)


def _admitted(out: Outcome, sub: Subscriber, foreign: int, seen: set[str],
              into: dict[str, Subscriber], lean: Mapping[str, str]) -> bool:
    """Count a parsed row; True when it is a subscriber of this gateway (stored in
    ``into``), False for a duplicate or another gateway's account."""
    if sub.account in seen or sub.account in lean:
        out.rejections.append(Rejection(sub.account, "duplicate_account",
                                        f"account {sub.account!r} appears twice"))
        return False
    seen.add(sub.account)
    out.foreign_addresses += foreign
    if foreign and not sub.addresses:
        out.foreign_accounts.append(sub.account)
        return False
    into[sub.account] = sub
    return True


_NO_LEAN: Mapping[str, str] = {}


def validate_rows(
    rows: Iterable[Mapping[str, object]],
    policy: Policy,
    previous: Mapping[str, Subscriber] | None = None,
) -> Outcome:
    """Validate a batch of rows; resolve address conflicts between accounts.

    When two accounts claim the same (or an overlapping) address, the account
    that held it before keeps it; otherwise the earlier row does. The losing
    row is rejected and its account keeps its previous good version.
    """
    previous = previous or {}
    out = Outcome()
    parsed: list[Subscriber] = []
    seen: set[str] = set()
    for row in rows:
        if type(row) is dict or isinstance(row, Mapping):
            got = parse_plain(row.get("account"), row.get("addresses"), row.get("state"),
                              row, policy)
            if got is not None and got[0].account not in seen:
                if _admitted(out, *got, seen, out.subscribers, _NO_LEAN):
                    parsed.append(got[0])
                continue
        account = None
        try:
            account = text_of(row, "account") if isinstance(row, Mapping) else None
            sub, foreign = parse_row(row, policy)
        except (RowError, ValueError, TypeError, AttributeError) as exc:
            _refused(out, exc, account, previous, seen, out.subscribers, _NO_LEAN)
            continue
        if _admitted(out, sub, foreign, seen, out.subscribers, _NO_LEAN):
            parsed.append(sub)
    _resolve_conflicts(out, ((sub.account, sub.addresses) for sub in parsed), previous)
    return out


def validate_columns(cols: Columns, policy: Policy,
                     previous: Mapping[str, Subscriber] | None = None) -> Outcome:
    """:func:`validate_rows` for a snapshot in columns, with the same outcome.

    An active row whose account is plain text and whose addresses are one plain
    IPv4 host (the vast majority) costs a regex match and two dict writes: it goes
    to ``Outcome.lean`` with no Subscriber built. Every other row takes the
    general path. Address conflicts are resolved only if some address is claimed
    twice or some prefix exists (then exactly as :func:`validate_rows` does).
    """
    previous = previous or {}
    served = served_prefixes(policy.serves) if policy.serves else None
    bulk = bulk_lean(cols, served) if not policy.serves or served is not None else None
    subs: dict[str, Subscriber]
    seen: set[str] = set()  # accounts of rows that took the general path
    general: dict[int, Subscriber] = {}
    bulk_general: tuple[list[int], list[Subscriber]] = ([], [])
    if bulk is not None:
        lean, hosts, rest = bulk
        out = Outcome(lean=lean)
        subs = out.subscribers
        clash = len(hosts) != len(lean)
        # With serves, bulk_plain takes the hosts inside it (bulk is None otherwise).
        done, plain = bulk_plain(cols, rest, policy.default_currency, _CONVERT, served)
        if done:
            before = len(hosts)
            accounts = list(map(_ACCOUNT_OF, plain))
            subs.update(zip(accounts, plain, strict=True))
            bulk_general = (done, plain)
            hosts.update(zip(map(_FIRST, map(_ADDRESSES_OF, plain)), accounts, strict=True))
            clash = clash or len(hosts) != before + len(plain)
            if len(done) < len(rest):
                seen.update(accounts)
                left = set(done)
                rest = [i for i in rest if i not in left]
            else:
                rest = []
        rows: Iterable[tuple[int, str | None, str | None, str | None]] = (
            (i, cols.account[i], cols.addresses[i], cols.state[i]) for i in rest)
    else:
        out = Outcome()
        subs = out.subscribers
        lean = out.lean
        hosts = {}
        rows = zip(range(len(cols)), cols.account, cols.addresses, cols.state, strict=False)
        clash = False
    prefix = False
    match = None if policy.serves or bulk is not None else LEAN_V4.fullmatch
    names = cols.extra_names
    for index, acc, addr, state in rows:
        if (state == "active" and match is not None and acc and addr and acc not in lean
                and index not in cols.extra
                and acc not in seen and match(addr) is not None and len(acc) <= 128
                and acc.strip() == acc):
            lean[acc] = addr
            if hosts.setdefault(addr, acc) is not acc:
                clash = True
            continue
        extra = cols.extra.get(index)
        got = parse_plain(acc, addr, state, dict(zip(names, extra, strict=False)) if extra
                          else NO_EXTRA, policy)
        if got is not None and got[0].account not in seen and got[0].account not in lean:
            sub, foreign = got
            name = sub.account
            seen.add(name)
            out.foreign_addresses += foreign
            if foreign and not sub.addresses:
                out.foreign_accounts.append(name)
                continue
            subs[name] = sub
            general[index] = sub
            elem = sub.addresses[0] if sub.addresses else None
            if elem is not None and hosts.setdefault(elem, name) is not name:
                clash = True
            continue
        row = cols.row(index)
        account = None
        try:
            account = text_of(row, "account")
            sub, foreign = parse_row(row, policy)
        except (RowError, ValueError, TypeError, AttributeError) as exc:
            _refused(out, exc, account, previous, seen, subs, lean)
            continue
        if not _admitted(out, sub, foreign, seen, subs, lean):
            continue
        general[index] = sub
        for elem in sub.addresses:
            if "/" in elem:
                prefix = True
            elif hosts.setdefault(elem, sub.account) != sub.account:
                clash = True
    if clash or prefix:
        general.update(zip(*bulk_general, strict=True))
        _resolve_conflicts(out, _in_row_order(cols, lean, general), previous)
    else:
        out.hosts = hosts
    return out


def validate_batch(rows: Sequence[Row], policy: Policy,
                   previous: Mapping[str, Subscriber] | None = None) -> Outcome:
    """:func:`validate_columns` for rows in columns, else :func:`validate_rows`."""
    if isinstance(rows, Columns):
        return validate_columns(rows, policy, previous)
    return validate_rows(rows, policy, previous)


_ACCOUNT_OF = operator.attrgetter("account")
_ADDRESSES_OF = operator.attrgetter("addresses")
_FIRST = operator.itemgetter(0)
_CONVERT: dict[str, Callable[..., Any]] = {
    "amount": lambda value: amount_of_row({"amount_due": value}),
    "date": lambda value: cached_date({"date": value}, "date"),
    "text": normalised,
}
"""The row path's converters, for :func:`~debtgate.billing.validate_bulk.bulk_plain`."""


def _in_row_order(cols: Columns, lean: Mapping[str, str], general: Mapping[int, Subscriber]
                  ) -> Iterable[tuple[str, tuple[str, ...]]]:
    for index, (acc, addr) in enumerate(zip(cols.account, cols.addresses, strict=True)):
        sub = general.get(index)
        if sub is not None:
            yield sub.account, sub.addresses
        elif acc is not None and addr is not None and lean.get(acc) is addr:
            yield acc, (addr,)


def _held_before(account: str, previous: Mapping[str, Subscriber], addr: str) -> int:
    before = previous.get(account)
    return 0 if before is not None and addr in before.addresses else 1


def _resolve_conflicts(out: Outcome, parsed: Iterable[tuple[str, tuple[str, ...]]],
                       previous: Mapping[str, Subscriber]) -> None:
    """``parsed``: (account, addresses) of the accepted rows, in row order."""
    # addr -> (index, account) of the current claimant; ranks are only computed
    # on a collision (rare), with the same outcome as ranking every claim.
    claims: dict[str, tuple[int, str]] = {}
    losers: dict[str, str] = {}
    has_prefix = False
    for index, (account, addresses) in enumerate(parsed):
        for addr in addresses:
            held = claims.get(addr)
            if held is None:
                claims[addr] = (index, account)
                if not has_prefix and "/" in addr:
                    has_prefix = True
                continue
            rank = (_held_before(account, previous, addr), index)
            held_rank = (_held_before(held[1], previous, addr), held[0])
            if rank < held_rank:
                losers[held[1]] = addr
                claims[addr] = (index, account)
            elif held[1] != account:
                losers[account] = addr
    for account, addr in losers.items():
        out.rejections.append(Rejection(account, "address_conflict",
                                        f"address {addr} is claimed by another account"))
        out.lean.pop(account, None)
        if account in previous:
            out.subscribers[account] = previous[account]
        else:
            out.subscribers.pop(account, None)
    if has_prefix:
        _carve_contained(out, {a: c for a, (_, c) in claims.items() if c not in losers})


def _carve_contained(out: Outcome, claims: Mapping[str, str]) -> None:
    """A host or prefix inside another account's prefix wins (the narrower claim, in
    any order): the wider prefix is carved around it (:mod:`.core.carve`)."""
    prefixes: dict[tuple[int, int], dict[int, str]] = {}
    for addr, account in claims.items():
        if "/" in addr:
            net = ipaddress.ip_network(addr)
            table = prefixes.setdefault((net.version, net.prefixlen), {})
            table[int(net.network_address)] = account
    holes: dict[str, dict[str, list[tuple[str, str]]]] = {}  # owner -> prefix -> holes
    for addr, account in claims.items():
        version, plen, value = _int_of(addr)
        for (pversion, pplen), table in prefixes.items():
            if pversion != version or pplen >= plen:
                continue
            shift = (32 if version == 4 else 128) - pplen
            network = (value >> shift) << shift
            owner = table.get(network)
            if owner is not None and owner != account:
                text = f"{_address(version, network)}/{pplen}"
                holes.setdefault(owner, {}).setdefault(text, []).append((addr, account))
    for owner, covered in holes.items():
        sub = out.subscribers.get(owner)
        if sub is None:
            continue
        cut = [addr for hs in covered.values() for addr, _ in hs]
        out.subscribers[owner] = replace(sub, addresses=carve_addresses(sub.addresses, cut))
        for prefix, hs in covered.items():
            out.rejections.append(Rejection(owner, "address_conflict", carved_detail(prefix, hs)))


def carved_detail(prefix: str, holes: Sequence[tuple[str, str]]) -> str:
    """The report of a prefix carved around other accounts' addresses."""
    shown = ", ".join(f"{addr} (account {acc})" for addr, acc in holes[:3])
    if len(holes) > 3:
        shown += f" and {len(holes) - 3} more"
    return (f"prefix {prefix} covers {shown} of other accounts: enforced without "
            f"{'it' if len(holes) == 1 else 'them'}")


def _address(version: int, value: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def _int_of(addr: str) -> tuple[int, int, int]:
    """(version, prefix length, network as int) of a normalised element."""
    if "/" not in addr and ":" not in addr:
        a, b, c, d = addr.split(".")
        return 4, 32, (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    net = ipaddress.ip_network(addr)
    return net.version, net.prefixlen, int(net.network_address)
