"""One billing row in, a subscriber or a row error out (pure): addresses, dates, amounts,
names and sessions parsed and checked against the gateway's :class:`Policy`.

:mod:`debtgate.billing.validate` applies this to batches (rows or columns) and resolves
what only a batch shows (address conflicts, prefixes containing other accounts' hosts).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from debtgate.billing.base import Refused
from debtgate.billing.validate_bulk import (
    NAME_MAX,
    OCTET,
    STATES,
    display_name,
    plain_account,
    plain_currency,
)
from debtgate.model import Session, Subscriber

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


class RowError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def text_of(row: Mapping[str, object], key: str) -> str:
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


def amount_of_row(row: Mapping[str, object]) -> Decimal:
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
NO_EXTRA: dict[str, object] = {}


def cached_date(fields: Mapping[str, object], key: str) -> date | None:
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


def normalised(kind: str, raw: str) -> str:
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
        amount = amount_of_row(fields)
        since = cached_date(fields, "since")
        block_at = cached_date(fields, "block_at")
    except RowError:
        return None
    if currency is None or not currency.strip():
        currency = policy.default_currency
    sub = Subscriber(account, fast[0], state, amount, normalised("currency", currency),
                     since, block_at, display_name(name),
                     normalised("language", language) if language else "",
                     normalised("tariff", tariff) if tariff else "", None)
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
    account = text_of(row, "account")
    if not account:
        raise RowError("missing_field", "account: missing")
    if len(account) > 128:
        raise RowError("bad_field", "account: longer than 128 characters")
    state_text = text_of(row, "state").lower()
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
    currency = text_of(row, "currency")
    if currency and not plain_currency(currency):
        raise RowError("bad_currency",
                       f"currency: {currency[:16]!r} is not an ISO 4217 code (three letters)")
    name = text_of(row, "name")
    if len(name) > NAME_MAX:
        raise RowError("bad_field", f"name: {len(name)} characters, longer than {NAME_MAX}")
    session = None
    nas, sid, user = text_of(row, "nas"), text_of(row, "session_id"), text_of(row, "user_name")
    if nas or sid or user:
        session = Session(nas=str(_shared(nas)) or None, session_id=sid or None,
                          user_name=user or None, framed_ip=framed)
    sub = Subscriber(
        account=account,
        addresses=addresses,
        state=state,
        amount_due=amount_of_row(row),
        currency=str(_shared((currency or policy.default_currency).upper())),
        since=_date(row, "since"),
        block_at=_date(row, "block_at"),
        name=name,
        language=str(_shared(text_of(row, "language").lower()[:8])),
        tariff=str(_shared(text_of(row, "tariff")[:100])),
        session=session,
    )
    return sub, foreign


