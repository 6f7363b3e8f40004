"""Bulk validation of snapshot columns: whole columns checked with C loops (pure).

The common rows of a large snapshot are plain: an account id as text, one plain IPv4
host, a known state, display fields as text and no RADIUS session. Such rows are
checked here column by column (regexes and ``map`` over whole columns, each distinct
amount or date parsed once) and their :class:`~debtgate.model.Subscriber` objects are
built in one ``map``. Anything unusual is left to the row-by-row path of
:func:`debtgate.billing.validate.validate_columns`, which names every problem; the outcome is
the same either way (``tests/unit/billing/test_bulk_validate.py`` holds them equal).
"""

from __future__ import annotations

import operator
import re
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import compress, repeat
from socket import AF_INET, inet_pton
from typing import Any, TypeGuard

from debtgate.billing.base import Columns
from debtgate.model import State, Subscriber

OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
"""An IPv4 octet in decimal, ASCII digits only (``\\d`` would take other scripts'
digits, which ``int`` reads but no address parser does)."""
_NOT_HELD_V4 = r"127\.|0\.0\.0\.0$|169\.254\.|22[4-9]\.|23[0-9]\."
"""Hosts no subscriber holds, by their start: loopback, 0.0.0.0, link-local, multicast."""
LEAN_V4 = re.compile(rf"(?!{_NOT_HELD_V4}){OCTET}\.{OCTET}\.{OCTET}\.{OCTET}")
"""A plain IPv4 host a subscriber may hold (not loopback, link-local, multicast, 0.0.0.0)."""
_NOT_HELD_LINE = re.compile(rf"(?m)^(?:{_NOT_HELD_V4})")
"""A line of joined hosts that :data:`LEAN_V4` refuses by its look-ahead."""
_SPACE = re.compile(r"[^\S\n]")
"""White space other than the line breaks of joined account ids."""
STATES = {s.value: s for s in State}
_TEXT_TYPES = {str, type(None)}
_SESSION = ("nas", "session_id", "user_name")
_TEXTS = ("currency", "name", "language", "tariff")
_CHECKED_LATER = ("language", "tariff")
"""Display columns a typed decoder checked that no check here reads (currency and
name are checked: a code that is not three letters, a name too long)."""


def plain_accounts(accounts: Sequence[Any]) -> bool:
    """Every id is non-empty text of at most 128 characters without white space."""
    if not accounts:
        return True
    try:
        joined = "\n".join(accounts)
    except TypeError:  # a NULL or a number
        return False
    return not (joined.count("\n") != len(accounts) - 1 or "\n\n" in joined
                or joined.startswith("\n") or joined.endswith("\n") or not joined
                or _SPACE.search(joined) or max(map(len, accounts)) > 128)


def plain_hosts(addresses: Sequence[Any]) -> bool:
    """Every value is one plain IPv4 host (:data:`LEAN_V4`): the kernel's own parser
    over the column (``inet_pton``: dotted decimal, no leading zero, ~30 % faster than
    the pattern) and one search of the joined column for the hosts it refuses."""
    try:
        joined = "\n".join(addresses)
    except TypeError:  # a NULL, a list, a number
        return False
    if _NOT_HELD_LINE.search(joined) is not None:
        return False
    try:
        deque(map(inet_pton, repeat(AF_INET), addresses), maxlen=0)
    except (OSError, ValueError):  # not an address; an embedded NUL
        return False
    return True


def bulk_lean(cols: Columns, served: tuple[str, ...] | None = None
              ) -> tuple[dict[str, str], dict[str, str], list[int]] | None:
    """The lean accounts of a snapshot (active, one plain IPv4 host, no extra columns):
    ``(lean, host -> account, indices of the other rows)``, or None when some such
    active row is not plain (then every row is checked one by one). ``served``: the
    text prefixes of ``[network] serves`` (:func:`served_prefixes`); a host outside
    them is another gateway's, left to the other rows' path."""
    mask = list(map(operator.eq, cols.state, repeat("active")))
    for index in cols.with_extra():
        mask[index] = False
    accounts: list[Any] = list(compress(cols.account, mask))
    addresses: list[Any] = list(compress(cols.addresses, mask))
    if accounts and (not plain_accounts(accounts) or not plain_hosts(addresses)):
        return None
    if served is not None and accounts:
        inside = list(map(str.startswith, addresses, repeat(served)))
        if not all(inside):
            for index, ok in zip(compress(range(len(mask)), mask), inside, strict=True):
                if not ok:
                    mask[index] = False
            accounts = list(compress(cols.account, mask))
            addresses = list(compress(cols.addresses, mask))
    rest = list(compress(range(len(mask)), map(operator.not_, mask)))
    if not accounts:
        return {}, {}, rest
    lean: dict[str, str] = dict(zip(accounts, addresses, strict=True))
    if len(lean) != len(accounts):
        return None  # an account twice: row order decides, one by one
    account = cols.account
    if any(account[i] in lean for i in rest):
        return None
    hosts: dict[str, str] = dict(zip(addresses, accounts, strict=True))
    if len(hosts) != len(accounts):
        # A host twice: the first row keeps it in the index (conflicts are resolved later).
        hosts = {}
        for acc, addr in zip(accounts, addresses, strict=True):
            hosts.setdefault(addr, acc)
    return lean, hosts, rest


def served_prefixes(nets: Sequence[Any]) -> tuple[str, ...] | None:
    """The IPv4 networks of ``nets`` as dotted text prefixes (``100.64.0.0/10`` -> the 64
    prefixes ``"100.64."`` ... ``"100.127."``): whether a plain host is inside is one C
    call (``str.startswith``). None if that would take more than 256 prefixes or a
    network is narrower than /24."""
    out: list[str] = []
    for net in nets:
        if net.version != 4:
            continue
        if net.prefixlen > 24:
            return None
        octets = -(-net.prefixlen // 8)
        if len(out) + (1 << (octets * 8 - net.prefixlen)) > 256:
            return None
        for piece in net.subnets(new_prefix=octets * 8):
            text = ".".join(str(piece.network_address).split(".")[:octets])
            out.append(f"{text}." if text else "")
    return tuple(out)


_BAD = object()


def _table(values: Sequence[Any], convert: Callable[[Any], Any]) -> dict[Hashable, Any]:
    """Each distinct value converted once (``_BAD`` for one that does not convert)."""
    table: dict[Hashable, Any] = {}
    for value in set(values):
        try:
            table[value] = convert(value)
        except (ValueError, TypeError, ArithmeticError):  # RowError is a ValueError
            table[value] = _BAD
    return table


def plain_account(value: object) -> TypeGuard[str]:
    """An account id the fast paths take: text of 1-128 characters, no white space at
    either end (the row path names any other)."""
    return (type(value) is str and 0 < len(value) <= 128 and not value[0].isspace()
            and not value[-1].isspace())


def _plain_host(value: Any) -> bool:
    return type(value) is str and LEAN_V4.fullmatch(value) is not None


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


_EDGE_SPACE = re.compile(r"(?:^|\x00)\s|\s(?:\x00|$)")


NAME_MAX = 200
"""The longest display name (stripped) a row may carry; a longer one is rejected."""
def plain_currency(value: str | None) -> bool:
    """A currency cell the row path accepts: NULL, blank (the default currency), or an
    ISO 4217 code: three ASCII letters, any case, white space around."""
    if value is None:
        return True
    if type(value) is not str:
        return False
    code = value.strip()
    return not code or (len(code) == 3 and code.isascii() and code.isalpha())


def _plain_name(value: Any) -> bool:
    return value is None or type(value) is not str or len(value.strip()) <= NAME_MAX


def display_name(value: str | None) -> str:
    """A display name as the row paths keep it: stripped (at most :data:`NAME_MAX`
    characters: the paths leave a longer one to the row path, which rejects it)."""
    return value.strip() if value else ""


def _names(values: Sequence[str | None]) -> list[str]:
    """Display names as the row path normalises them; names that need nothing done
    (the usual case, checked over the joined column) are taken as they are."""
    present = [v for v in values if v]
    if not present:
        return [""] * len(values)
    joined = "\x00".join(present)
    if _EDGE_SPACE.search(joined) is None:
        return [v or "" for v in values]
    return list(map(display_name, values))


def repeated(values: Sequence[Any]) -> set[Any]:
    """The values that occur more than once (NULLs ignored); TypeError if some value
    is not hashable."""
    distinct = len(set(values))
    if distinct == len(values):
        return set()
    nulls = values.count(None)
    if distinct == len(values) - nulls + 1:
        return set()
    return {v for v, n in Counter(values).items() if n > 1 and v is not None}


class _Mask:
    """Which rows are still plain; None while all are (the common case costs nothing)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.keep: list[bool] | None = None

    def drop(self, bad: Sequence[bool]) -> None:
        """``bad``: one flag per row, True to leave the row to the row path."""
        good = list(map(operator.not_, bad))
        self.keep = good if self.keep is None else list(map(operator.and_, self.keep, good))


@dataclass(slots=True)
class PlainRows:
    """Rows that passed every column check of :func:`plain_rows`, in row order."""

    indices: list[int]
    account: list[str]
    addresses: list[str]
    states: list[State]
    column: dict[str, Sequence[Any]]
    """The extra columns of these rows, by name."""
    tables: dict[str, dict[Hashable, Any]]
    """``amount_due``, ``since``, ``block_at``: each distinct value, converted."""


def plain_rows(cols: Columns, indices: list[int], convert: dict[str, Callable[..., Any]],
               *, distinct: bool = False, served: tuple[str, ...] | None = None
               ) -> PlainRows | None:
    """The plain rows among ``indices``: a plain account id (not repeated among them),
    one plain IPv4 host, a known state, display fields as text, values that convert,
    no RADIUS session. None when there is none.

    Each check runs over a whole column in C first; only when it fails is the column
    checked row by row. ``convert`` holds the row path's converters: ``amount``,
    ``date`` and ``text`` (kind, raw), so both paths agree. ``distinct``: the caller
    leaves out every account that occurs twice itself (not checked here). ``served``:
    the text prefixes of ``[network] serves`` (:func:`served_prefixes`); a host outside
    them is left to the row path (another gateway's)."""
    if not indices:
        return None
    names = cols.extra_names
    every = len(indices) == len(cols)  # indices are ascending: every row
    account: list[Any] = cols.account if every else list(map(cols.account.__getitem__, indices))
    addresses: list[Any] = (cols.addresses if every
                            else list(map(cols.addresses.__getitem__, indices)))
    state_of: Callable[[Any], State | None] = STATES.get
    states = list(map(state_of, cols.state if every else map(cols.state.__getitem__, indices)))
    mask = _Mask(len(indices))
    if not plain_accounts(account):
        mask.drop([not plain_account(a) for a in account])
    if not plain_hosts(addresses):
        mask.drop([not _plain_host(a) for a in addresses])
    if served is not None:
        try:  # as in bulk_lean: one C loop over the column
            inside = list(map(str.startswith, addresses, repeat(served)))
        except TypeError:  # a NULL or a list: those rows are not plain anyway
            inside = [type(a) is str and a.startswith(served) for a in addresses]
        if not all(inside):
            mask.drop(list(map(operator.not_, inside)))
    if None in states:
        mask.drop([s is None for s in states])
    column: dict[str, Sequence[Any]] = {}
    for name in names:
        if cols.typed_texts and name in _CHECKED_LATER:
            continue  # text or NULL already; read when subscribers are built
        got = cols.extra_column(name, indices)
        if got is not None:
            column[name] = got
    none: list[Any] = [None] * len(indices)
    for key in _SESSION:
        values = column.get(key)
        if values is not None and any(values):
            mask.drop([v is not None for v in values])
    for key in _TEXTS:
        values = column.get(key)
        if values is not None and not set(map(type, values)) <= _TEXT_TYPES:
            mask.drop([not _text_or_none(v) for v in values])
    currencies = column.get("currency")
    if currencies is not None:
        odd = {v for v in set(currencies) if not plain_currency(v)}
        if odd:
            mask.drop([v in odd for v in currencies])
    names_ = column.get("name")
    if names_ is not None:
        present = [v for v in names_ if v and type(v) is str]
        if present and max(map(len, present)) > NAME_MAX:
            mask.drop([not _plain_name(v) for v in names_])
    tables = {}
    for key, kind in (("amount_due", "amount"), ("since", "date"), ("block_at", "date")):
        values = column.get(key, none)
        table = tables[key] = _table(values if key in column else (None,), convert[kind])
        if _BAD in table.values():
            mask.drop([table[v] is _BAD for v in values])
    twice = set() if distinct else repeated(account)
    if twice:  # an account twice: all its rows go the row path, in row order
        mask.drop([a in twice for a in account])
    keep = mask.keep
    if keep is not None:
        if not any(keep):
            return None

        def pick(col: Sequence[Any]) -> list[Any]:
            return list(compress(col, keep))

        indices, account, addresses, states = (pick(indices), pick(account), pick(addresses),
                                               pick(states))
        column = {k: pick(v) for k, v in column.items()}
    return PlainRows(indices, account, addresses, states, column, tables)  # type: ignore[arg-type]


def bulk_plain(cols: Columns, indices: list[int], default_currency: str,
               convert: dict[str, Callable[..., Any]], served: tuple[str, ...] | None = None
               ) -> tuple[list[int], list[Subscriber]]:
    """The plain rows among ``indices`` (the non-lean rows) and their subscribers, in
    row order (see :func:`plain_rows`, ``served`` too); the other rows are left to the
    row-by-row path (which names problems)."""
    rows = plain_rows(cols, indices, convert, served=served)
    if rows is None:
        return [], []
    indices, account, addresses, states = rows.indices, rows.account, rows.addresses, rows.states
    column, tables = rows.column, rows.tables
    none: list[Any] = [None] * len(indices)
    for name in _CHECKED_LATER if cols.typed_texts else ():
        got = cols.extra_column(name, indices)
        if got is not None:
            column[name] = got
    text = convert["text"]
    currencies = column.get("currency", none)
    currency = {v: text("currency", v if v is not None and v.strip() else default_currency)
                for v in set(currencies)}
    languages, tariffs = column.get("language", none), column.get("tariff", none)
    language = {v: text("language", v) if v else "" for v in set(languages)}
    tariff = {v: text("tariff", v) if v else "" for v in set(tariffs)}
    amount, since, block_at = tables["amount_due"], tables["since"], tables["block_at"]
    subs = list(map(
        Subscriber, account, [(a,) for a in addresses], states,
        map(amount.__getitem__, column.get("amount_due", none)),
        map(currency.__getitem__, currencies),
        map(since.__getitem__, column.get("since", none)),
        map(block_at.__getitem__, column.get("block_at", none)),
        _names(column.get("name", none)),
        map(language.__getitem__, languages),
        map(tariff.__getitem__, tariffs),
    ))
    return indices, subs
