"""Language choice and the formatting of money, dates and account numbers (Babel)."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.numbers import format_currency, format_decimal, get_currency_precision

NBSP = "\u00a0"

_CODE_NEXT_TO_DIGIT = re.compile(r"(?<=[A-Z]{3})(?=\d)|(?<=\d)(?=[A-Z]{3})")


@functools.lru_cache(maxsize=64)
def _locale(lang: str) -> Locale:
    try:
        return Locale.parse(lang)
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def _digits(code: str) -> int:
    """The currency's minor-unit digits from CLDR (0 for JPY, 2 for RUB; 2 without one)."""
    return get_currency_precision(code) if code else 2


def minor_units(amount: Decimal, currency: str) -> int:
    """The amount in minor units (kopecks, cents), rounded half up."""
    exp = _digits(currency.upper())
    return int((amount * (10**exp)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_money(amount: Decimal, currency: str, lang: str) -> str:
    """The amount as the language writes money (Babel, CLDR): ``1 234,50 ₽`` (ru),
    ``RUB 1,234.50`` (en). Without a currency: the number alone."""
    locale = _locale(lang)
    code = currency.upper()
    amount = amount.quantize(Decimal(1).scaleb(-_digits(code)), rounding=ROUND_HALF_UP)
    if not code:
        return str(format_decimal(amount, format="#,##0.00", locale=locale))
    text = str(format_currency(amount, code, locale=locale))
    # CLDR's currency spacing: a code written next to a digit gets a no-break space.
    return _CODE_NEXT_TO_DIGIT.sub(NBSP, text)


def format_date(day: date, lang: str) -> str:
    """The date as the language writes it in full (Babel, CLDR ``long``):
    ``5 марта 2025 г.`` (ru), ``March 5, 2025`` (en)."""
    return str(babel_format_date(day, "long", locale=_locale(lang)))


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
