"""Billing rows in, subscribers or rejections out (pure).

Nothing a billing row contains can crash the daemon: every problem becomes a
:class:`~debtgate.model.Rejection` with a short reason (a metric label) and a
detail naming the offending value. A rejected row keeps the account's last
good version, so bad input loses nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from msgspec.structs import replace

from debtgate.billing.base import Columns, Refused, Row
from debtgate.billing.validate_bulk import (
    LEAN_V4,
    NAME_MAX,
    OCTET,
    STATES,
    bulk_lean,
    bulk_plain,
    display_name,
    plain_account,
    plain_currency,
    served_prefixes,
)
from debtgate.core.carve import carve_addresses
from debtgate.model import Rejection, Session, Subscriber

_SPLIT = re.compile(r"[\s,;]+")
_V4HOST = re.compile(rf"\s*({OCTET}\.{OCTET}\.{OCTET}\.{OCTET})\s*")
_CACHE_MAX = 4096
_STATES = STATES
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Policy:
    """What this gateway accepts and enforces."""

    min_prefix_v4: int = 24
    min_prefix_v6: int = 48
    serves: tuple[IPNetwork, ...] = ()
    default_currency: str = "RUB"


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


class RowError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _text(row: Mapping[str, object], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if type(value) is str:
        return value.strip()
    if not isinstance(value, str | int | float | Decimal):
        raise RowError("bad_field", f"{key}: expected text, got {type(value).__name__}")
    return str(value).strip()


def parse_address(text: str, policy: Policy) -> IPNetwork:
    """Parse one address or prefix; raise :class:`RowError` if it is unusable."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        reason = "host_bits_set" if "host bits set" in str(exc) else "bad_address"
        raise RowError(reason, f"address {text[:64]!r}: {exc}") from None
    minimum = policy.min_prefix_v4 if net.version == 4 else policy.min_prefix_v6
    if net.prefixlen == 0 or net.prefixlen < minimum:
        raise RowError(
            "prefix_too_wide",
            f"address {text[:64]!r}: /{net.prefixlen} is wider than the allowed /{minimum}",
        )
    if net.is_loopback or net.is_multicast or net.is_unspecified or net.is_link_local:
        raise RowError("bad_address", f"address {text[:64]!r}: not a subscriber address")
    return net


def element(net: IPNetwork) -> str:
    """The normalised text of an address: hosts without suffix, prefixes with it."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _addresses(row: Mapping[str, object], policy: Policy) -> list[IPNetwork]:
    raw = row.get("addresses")
    if raw is None or raw == "":
        raise RowError("missing_field", "addresses: missing")
    if isinstance(raw, str):
        items: list[object] = [p for p in _SPLIT.split(raw) if p]
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise RowError("bad_field", f"addresses: expected a list or text, got {type(raw).__name__}")
    if not items:
        raise RowError("missing_field", "addresses: empty")
    nets = []
    for item in items:
        if not isinstance(item, str):
            item = str(item)
        nets.append(parse_address(item.strip(), policy))
    collapsed4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    collapsed6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return [*collapsed4, *collapsed6]


def _date(row: Mapping[str, object], key: str) -> date | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return _shared(value)  # type: ignore[return-value]
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text).date() if "T" in text or " " in text else (
            date.fromisoformat(text)
        )
    except ValueError:
        raise RowError("bad_date", f"{key}: {text[:32]!r} is not an ISO date") from None


def _amount(row: Mapping[str, object]) -> Decimal:
    value = row.get("amount_due")
    if value is None or value == "":
        return _ZERO
    if type(value) is str:
        cached = _DECIMALS.get(value)
        if cached is not None:
            return cached
        amount = _amount_of(value)
        if len(_DECIMALS) < _CACHE_MAX:
            _DECIMALS[value] = amount
        return amount
    return _amount_of(value)


_ZERO = Decimal(0)


def _amount_of(value: object) -> Decimal:
    if isinstance(value, bool):
        raise RowError("bad_amount", f"amount_due: {value!r} is not a number")
    try:
        amount = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise RowError("bad_amount", f"amount_due: {str(value)[:32]!r} is not a number") from None
    if not amount.is_finite() or abs(amount) >= Decimal(10) ** 12:
        raise RowError("bad_amount", f"amount_due: {str(value)[:32]!r} is out of range")
    return amount


def _served(net: IPNetwork, serves: tuple[IPNetwork, ...]) -> bool:
    for s in serves:
        if isinstance(net, ipaddress.IPv4Network) and isinstance(s, ipaddress.IPv4Network):
            if net.subnet_of(s):
                return True
        elif isinstance(net, ipaddress.IPv6Network) and isinstance(s, ipaddress.IPv6Network):
            if net.subnet_of(s):
                return True
    return False


@functools.lru_cache(maxsize=16)
def _v4_ranges(serves: tuple[IPNetwork, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((int(s.network_address), int(s.broadcast_address)) for s in serves
                 if s.version == 4)


def _fast_v4_host(raw: str, policy: Policy) -> tuple[tuple[str, ...], int] | None:
    """(elements, foreign) for one plain IPv4 host that passes every check; else None
    (the general path then decides, and names the problem)."""
    match = _V4HOST.fullmatch(raw)
    if match is None:
        return None
    text = match.group(1)
    a, b, c, d = text.split(".")
    first, second = int(a), int(b)
    if first == 127 or 224 <= first <= 239 or (first == 169 and second == 254) or (
            text == "0.0.0.0"):  # noqa: S104 - a check, not a bind
        return None
    if policy.serves:
        value = (first << 24) | (second << 16) | (int(c) << 8) | int(d)
        if not any(lo <= value <= hi for lo, hi in _v4_ranges(policy.serves)):
            return (), 1
    return (text,), 0


_DECIMALS: dict[str, Decimal] = {}
_SHARED: dict[object, object] = {}


def _shared(value: object) -> object:
    """One object for equal small values (dates, short texts): compact memory at scale."""
    got = _SHARED.get(value)
    if got is not None:
        return got
    if len(_SHARED) < _CACHE_MAX:
        _SHARED[value] = value
    return value


_DATES: dict[str, date | None] = {}
_NORMAL: dict[tuple[str, str], str] = {}
_NO_EXTRA: dict[str, object] = {}


def _cached_date(fields: Mapping[str, object], key: str) -> date | None:
    raw = fields.get(key)
    if raw is None:
        return None
    if type(raw) is str:
        got = _DATES.get(raw, _DATES)
        if got is not _DATES:
            return got  # type: ignore[return-value]
        value = _date(fields, key)
        if len(_DATES) < _CACHE_MAX:
            _DATES[raw] = value
        return value
    return _date(fields, key)


def _normal(kind: str, raw: str) -> str:
    """A short display text normalised as :func:`parse_row` does, one object per value."""
    key = (kind, raw)
    got = _NORMAL.get(key)
    if got is None:
        text = raw.strip()
        got = str(_shared(text.upper() if kind == "currency" else
                          text.lower()[:8] if kind == "language" else text[:100]))
        if len(_NORMAL) < _CACHE_MAX:
            _NORMAL[key] = got
    return got


def parse_plain(account: object, addresses: object, state_text: object,
                fields: Mapping[str, object], policy: Policy) -> tuple[Subscriber, int] | None:
    """:func:`parse_row`'s result for a plain row: account, state and display fields as
    text, one plain IPv4 host (or a list holding only it), no session; else None (the
    general path then decides and names any problem). ``fields`` holds the other
    columns (the row itself, or the extras of a row in columns)."""
    if not plain_account(account):
        return None
    state = _STATES.get(state_text) if type(state_text) is str else None
    if state is None:
        return None
    if type(addresses) is list and len(addresses) == 1:
        addresses = addresses[0]
    if type(addresses) is not str:
        return None
    fast = _fast_v4_host(addresses, policy)
    if fast is None:
        return None
    get = fields.get
    if get("nas") is not None or get("session_id") is not None or get("user_name") is not None:
        return None
    texts: list[str | None] = []
    for key in ("currency", "name", "language", "tariff"):
        value = get(key)
        if value is not None and type(value) is not str:
            return None
        texts.append(value)
    currency, name, language, tariff = texts
    if not plain_currency(currency) or (name is not None and len(name) > NAME_MAX
                                        and len(name.strip()) > NAME_MAX):
        return None
    try:
        amount = _amount(fields)
        since = _cached_date(fields, "since")
        block_at = _cached_date(fields, "block_at")
    except RowError:
        return None
    if currency is None or not currency.strip():
        currency = policy.default_currency
    sub = Subscriber(account, fast[0], state, amount, _normal("currency", currency),
                     since, block_at, display_name(name),
                     _normal("language", language) if language else "",
                     _normal("tariff", tariff) if tariff else "", None)
    return sub, fast[1]


def parse_row(row: Mapping[str, object], policy: Policy) -> tuple[Subscriber, int]:
    """One row to a Subscriber with only the addresses this gateway serves.

    Returns the subscriber and the number of foreign addresses dropped.
    Raises :class:`RowError` for an unusable row.
    """
    if not isinstance(row, Mapping):
        raise RowError("bad_row", f"row is a {type(row).__name__}, not a mapping")
    refused = row.get("state")
    if isinstance(refused, Refused):  # the source could not read the row
        raise RowError(refused.reason, refused.detail)
    account = _text(row, "account")
    if not account:
        raise RowError("missing_field", "account: missing")
    if len(account) > 128:
        raise RowError("bad_field", "account: longer than 128 characters")
    state_text = _text(row, "state").lower()
    if not state_text:
        raise RowError("missing_field", "state: missing")
    state = _STATES.get(state_text)
    if state is None:
        raise RowError("unknown_state",
                       f"state: {state_text[:32]!r} is not one of {sorted(_STATES)}")
    raw = row.get("addresses")
    fast = _fast_v4_host(raw, policy) if type(raw) is str else None
    if fast is not None:
        addresses, foreign = fast
        framed = addresses[0] if addresses else None
    else:
        nets = _addresses(row, policy)
        mine = [n for n in nets if not policy.serves or _served(n, policy.serves)]
        addresses = tuple(element(n) for n in mine)
        foreign = len(nets) - len(mine)
        framed = next((element(n) for n in mine if n.prefixlen == n.max_prefixlen), None)
    currency = _text(row, "currency")
    if currency and not plain_currency(currency):
        raise RowError("bad_currency",
                       f"currency: {currency[:16]!r} is not an ISO 4217 code (three letters)")
    name = _text(row, "name")
    if len(name) > NAME_MAX:
        raise RowError("bad_field", f"name: {len(name)} characters, longer than {NAME_MAX}")
    session = None
    nas, sid, user = _text(row, "nas"), _text(row, "session_id"), _text(row, "user_name")
    if nas or sid or user:
        session = Session(nas=str(_shared(nas)) or None, session_id=sid or None,
                          user_name=user or None, framed_ip=framed)
    sub = Subscriber(
        account=account,
        addresses=addresses,
        state=state,
        amount_due=_amount(row),
        currency=str(_shared((currency or policy.default_currency).upper())),
        since=_date(row, "since"),
        block_at=_date(row, "block_at"),
        name=name,
        language=str(_shared(_text(row, "language").lower()[:8])),
        tariff=str(_shared(_text(row, "tariff")[:100])),
        session=session,
    )
    return sub, foreign


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
                sub, foreign = got
                seen.add(sub.account)
                out.foreign_addresses += foreign
                if foreign and not sub.addresses:
                    out.foreign_accounts.append(sub.account)
                    continue
                out.subscribers[sub.account] = sub
                parsed.append(sub)
                continue
        account = None
        try:
            account = _text(row, "account") if isinstance(row, Mapping) else None
            sub, foreign = parse_row(row, policy)
        except (RowError, ValueError, TypeError, AttributeError) as exc:
            reason = exc.reason if isinstance(exc, RowError) else "bad_row"
            detail = exc.detail if isinstance(exc, RowError) else f"unreadable row: {exc}"
            out.rejections.append(Rejection(account or None, reason, detail))
            if account and account in previous and account not in seen:
                out.subscribers[account] = previous[account]
            if account:
                seen.add(account)
            continue
        if sub.account in seen:
            out.rejections.append(Rejection(sub.account, "duplicate_account",
                                            f"account {sub.account!r} appears twice"))
            continue
        seen.add(sub.account)
        out.foreign_addresses += foreign
        if foreign and not sub.addresses:
            out.foreign_accounts.append(sub.account)
            continue
        out.subscribers[sub.account] = sub
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
                          else _NO_EXTRA, policy)
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
            account = _text(row, "account")
            sub, foreign = parse_row(row, policy)
        except (RowError, ValueError, TypeError, AttributeError) as exc:
            reason = exc.reason if isinstance(exc, RowError) else "bad_row"
            detail = exc.detail if isinstance(exc, RowError) else f"unreadable row: {exc}"
            out.rejections.append(Rejection(account or None, reason, detail))
            if (account and account in previous and account not in seen
                    and account not in lean):
                subs[account] = previous[account]
            if account:
                seen.add(account)
            continue
        if sub.account in seen or sub.account in lean:
            out.rejections.append(Rejection(sub.account, "duplicate_account",
                                            f"account {sub.account!r} appears twice"))
            continue
        seen.add(sub.account)
        out.foreign_addresses += foreign
        if foreign and not sub.addresses:
            out.foreign_accounts.append(sub.account)
            continue
        subs[sub.account] = sub
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
    "amount": lambda value: _amount({"amount_due": value}),
    "date": lambda value: _cached_date({"date": value}, "date"),
    "text": _normal,
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
