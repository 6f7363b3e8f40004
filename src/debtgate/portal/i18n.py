"""Language choice and the formatting of money, dates and account numbers."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

NBSP = "\u00a0"

CURRENCY_SYMBOLS: dict[str, str] = {
    "RUB": "₽",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "KZT": "₸",
    "UAH": "₴",
    "BYN": "Br",
    "KGS": "сом",
    "UZS": "сўм",
    "AMD": "֏",
    "GEL": "₾",
    "AZN": "₼",
    "TRY": "₺",
}
"""Symbols used in place of ISO 4217 codes; other codes are shown as they are."""

ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK"})
"""Currencies without minor units."""

_SEPARATORS: dict[str, tuple[str, str]] = {
    # language: (group separator, decimal separator)
    "ru": (NBSP, ","),
    "uk": (NBSP, ","),
    "kk": (NBSP, ","),
    "be": (NBSP, ","),
    "de": (".", ","),
    "en": (",", "."),
}
_SYMBOL_AFTER = frozenset({"ru", "uk", "kk", "be", "de"})

_MONTHS: dict[str, tuple[str, ...]] = {
    "ru": ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}


def minor_units(amount: Decimal, currency: str) -> int:
    """The amount in minor units (kopecks, cents), rounded half up."""
    exp = 0 if currency.upper() in ZERO_DECIMAL else 2
    return int((amount * (10**exp)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_number(amount: Decimal, lang: str, places: int = 2) -> str:
    """``amount`` with the language's separators, e.g. ``1 234,50`` (ru)."""
    group, point = _SEPARATORS.get(lang, _SEPARATORS["en"])
    quantum = Decimal(1).scaleb(-places)
    value = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):.{places}f}"
    whole, _, frac = text.partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    out = group.join(groups)
    return f"{sign}{out}{point}{frac}" if frac else f"{sign}{out}"


def format_money(amount: Decimal, currency: str, lang: str) -> str:
    """E.g. ``1 234,50 ₽`` for ru/RUB, ``₽1,234.50`` for en/RUB, ``1,234.50 XYZ``."""
    code = currency.upper()
    places = 0 if code in ZERO_DECIMAL else 2
    number = format_number(amount, lang, places)
    symbol = CURRENCY_SYMBOLS.get(code)
    if not code:
        return number
    if symbol is None:
        return f"{number}{NBSP}{code}"
    if lang in _SYMBOL_AFTER:
        return f"{number}{NBSP}{symbol}"
    if len(symbol) > 1:
        return f"{symbol}{NBSP}{number}"
    return f"{symbol}{number}"


def format_date(day: date, lang: str) -> str:
    """E.g. ``5 марта 2025`` (ru), ``5 March 2025`` (en), ISO otherwise."""
    months = _MONTHS.get(lang)
    if months is None:
        return day.isoformat()
    return f"{day.day}{NBSP}{months[day.month - 1]} {day.year}"


def mask_account(account: str) -> str:
    """Show at most the last 4 characters (and never more than half) of an account."""
    visible = min(4, len(account) // 2)
    return "•••" + (account[-visible:] if visible else "")


def parse_accept_language(header: str | None) -> list[str]:
    """Primary language tags of an Accept-Language header, best first (q=0 dropped)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary and primary != "*" and q > 0:
            ranked.append((-q, index, primary))
    ranked.sort()
    return [tag for _, _, tag in ranked]


def choose_language(
    available: Collection[str],
    default: str,
    *,
    explicit: str | None = None,
    subscriber: str | None = None,
    accept: str | None = None,
) -> str:
    """``?lang=`` first, then the subscriber's language, then Accept-Language, then default."""
    for candidate in (explicit, subscriber):
        tag = (candidate or "").lower().replace("_", "-").split("-")[0]
        if tag and tag in available:
            return tag
    for tag in parse_accept_language(accept):
        if tag in available:
            return tag
    if default in available:
        return default
    return sorted(available)[0] if available else default
