"""Money and dates as each language writes them (Babel, CLDR), account masking, language
choice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from debtgate.portal.i18n import (
    choose_language,
    format_date,
    format_money,
    mask_account,
    minor_units,
    parse_accept_language,
)

S = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "currency", "lang", "text"),
    [
        ("1234.5", "RUB", "ru", f"1{S}234,50{S}₽"),
        ("1234.5", "RUB", "en", f"RUB{S}1,234.50"),
        ("0.005", "RUB", "ru", f"0,01{S}₽"),
        ("1234567.891", "EUR", "ru", f"1{S}234{S}567,89{S}€"),
        ("999", "USD", "en", "$999.00"),
        ("1000", "JPY", "en", "¥1,000"),
        ("12.3", "XYZ", "en", f"XYZ{S}12.30"),
        ("12.3", "", "ru", "12,30"),
        ("-5", "RUB", "ru", f"-5,00{S}₽"),
        ("1234.5", "BYN", "en", f"BYN{S}1,234.50"),
        ("1234.5", "RUB", "de", f"1.234,50{S}RUB"),
        ("1234.5", "KZT", "kk", f"1{S}234,50{S}₸"),
        ("1234.5", "rub", "ru", f"1{S}234,50{S}₽"),
    ],
)
def test_format_money(amount, currency, lang, text):
    assert format_money(Decimal(amount), currency, lang) == text


def test_minor_units():
    assert minor_units(Decimal("1234.50"), "RUB") == 123450
    assert minor_units(Decimal("0.005"), "RUB") == 1
    assert minor_units(Decimal("1000"), "JPY") == 1000


def test_format_date():
    assert format_date(date(2025, 3, 5), "ru") == "5 марта 2025\u202fг."
    assert format_date(date(2025, 12, 31), "en") == "December 31, 2025"
    assert format_date(date(2025, 3, 5), "de") == "5. März 2025"
    assert format_date(date(2025, 1, 2), "xx") == "January 2, 2025"  # unknown: English


@pytest.mark.parametrize(
    ("account", "masked"),
    [("ACC0000123456", "•••3456"), ("12345678", "•••5678"), ("1234", "•••34"),
     ("12", "•••2"), ("1", "•••"), ("", "•••")],
)
def test_mask_account(account, masked):
    assert mask_account(account) == masked


def test_parse_accept_language():
    assert parse_accept_language("de-DE,de;q=0.9,en;q=0.8,ru;q=0.7") == ["de", "de", "en", "ru"]
    assert parse_accept_language("ru;q=0.1, en") == ["en", "ru"]
    assert parse_accept_language("en;q=0, *;q=0.5, fr;q=bad") == []
    assert parse_accept_language(None) == []


@pytest.mark.parametrize(
    ("kw", "chosen"),
    [
        ({}, "ru"),
        ({"accept": "en-US,en;q=0.9"}, "en"),
        ({"accept": "de,fr"}, "ru"),
        ({"subscriber": "en", "accept": "ru"}, "en"),
        ({"subscriber": "en_GB"}, "en"),
        ({"subscriber": "de", "accept": "en"}, "en"),
        ({"explicit": "en", "subscriber": "ru"}, "en"),
        ({"explicit": "../../etc", "subscriber": "ru", "accept": "en"}, "ru"),
        ({"explicit": "xx"}, "ru"),
    ],
)
def test_choose_language(kw, chosen):
    assert choose_language({"ru", "en"}, "ru", **kw) == chosen


def test_choose_language_default_missing():
    assert choose_language({"en"}, "ru") == "en"
