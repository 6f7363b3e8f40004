"""Probes, config validation, the wire view, the cache, payment URL templates."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from debtgate.config.portal import PortalConfig
from debtgate.model import State, Subscriber
from debtgate.portal.lookup import ViewCache
from debtgate.portal.pages import fill_template, qr_svg
from debtgate.portal.probes import APPLE, FIREFOX, GENERATE_204, WINDOWS_CONNECTTEST, match_probe
from debtgate.view import PromiseOffer, SubscriberView, decode_view, encode_view, view_of


@pytest.mark.parametrize(
    ("host", "path", "probe"),
    [
        ("connectivitycheck.gstatic.com", "/generate_204", GENERATE_204),
        ("connectivitycheck.platform.hicloud.com", "/generate_204", GENERATE_204),
        ("www.google.com", "/gen_204", GENERATE_204),
        ("captive.apple.com", "/hotspot-detect.html", APPLE),
        ("captive.apple.com", "/", APPLE),
        ("www.apple.com", "/library/test/success.html", APPLE),
        ("www.msftconnecttest.com:80", "/connecttest.txt", WINDOWS_CONNECTTEST),
        ("DetectPortal.Firefox.com", "/success.txt", FIREFOX),
        ("www.apple.com", "/iphone", None),
        ("www.msftconnecttest.com", "/redirect", None),
        ("news.example", "/", None),
        (None, "/", None),
    ],
)
def test_match_probe(host, path, probe):
    assert match_probe(host, path) is probe


def test_config_defaults_and_docstrings():
    config = PortalConfig()
    assert config.canonical_hosts == {"10.255.255.1"}
    assert config.captive_portal_url == "http://10.255.255.1:8080/"
    for name, field in PortalConfig.model_fields.items():
        assert field.description, f"{name} has no docstring"


@pytest.mark.parametrize(
    "bad",
    [
        {"sbp_template": "https://qr.nspk.ru/?sum={amount_rub}"},
        {"sbp_template": "https://qr.nspk.ru/?sum={amount.real}"},
        {"sbp_template": "javascript:alert({amount})"},
        {"payment_links": [{"title": "x", "url": "https://p/?a={account!r}"}]},
        {"public_url": "//portal/"},
        {"https_port": 8443},
        {"default_language": "../x"},
        {"unknown_key": 1},
        {"trusted_proxies": ["not-a-net"]},
    ],
)
def test_config_rejects(bad):
    with pytest.raises(ValidationError):
        PortalConfig.model_validate(bad)


def test_https_portal_url_for_ipv6_public_url(tmp_path):
    config = PortalConfig(public_url="http://[fd00::1]:8080/", https_port=443,
                          tls_cert_file=tmp_path / "c", tls_key_file=tmp_path / "k")
    assert config.captive_portal_url == "https://[fd00::1]/"
    assert config.canonical_hosts == {"[fd00::1]"}


def test_the_view_decodes_what_the_daemon_encodes():
    sub = Subscriber(account="42", addresses=("10.0.0.1",), state=State.WARN,
                     amount_due=Decimal("10.5"), since=date(2025, 3, 5),
                     block_at=datetime(2025, 3, 20, 12, 30), language="ru")
    offer = PromiseOffer(eligible=True, days=5, per_period=1, period_days=30,
                         max_debt=Decimal("3000"), tariffs=("home",))
    sent = view_of(sub, "10.0.0.1", ack_timeout=600, default_currency="RUB", promise=offer)
    view = decode_view(encode_view(sent))
    assert view == sent and view.state is State.WARN and view.amount_due == Decimal("10.5")
    assert view.currency == "RUB" and view.block_at == date(2025, 3, 20)  # the day only
    assert view.promise is not None and view.promise.max_debt == Decimal("3000")
    assert view.captive


@pytest.mark.parametrize(("bad", "field"), [
    (b'{"account": "1", "state": "warn"}', "address"),
    (b'{"address": "a", "account": "1", "state": "nope"}', "state"),
    (b'{"address": "a", "account": "1", "state": "warn", "amount_due": "NaN"}', "finite"),
    (b'{"address": "a", "account": "1", "state": "warn", "since": "soon"}', "since"),
    (b'{"address": "a", "account": "1", "state": "blocked", "promise": {"days": 3}}',
     "eligible"),
])
def test_a_malformed_view_is_refused_naming_the_field(bad: bytes, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        decode_view(bad)


def test_view_cache_ttl_and_bound():
    now = [0.0]
    cache = ViewCache(ttl=2.0, size=2, clock=lambda: now[0])
    view = SubscriberView(address="a", account="1", state=State.ACTIVE)
    cache.put("a", view)
    cache.put("b", None)
    assert cache.get("a") == (True, view) and cache.get("b") == (True, None)
    cache.put("c", None)  # evicts the least recently used: a (b was read last)
    assert cache.get("a") == (False, None) and len(cache) == 2
    assert cache.get("b") == (True, None)
    now[0] = 1.9
    assert cache.get("c") == (True, None)
    now[0] = 2.0
    assert cache.get("c") == (False, None)


def test_fill_template_escapes_and_validates():
    view = SubscriberView(address="a", account="A&B 1/2", state=State.BLOCKED,
                          amount_due=Decimal("1234.5"), currency="RUB")
    url = fill_template("https://qr.nspk.ru/X?sum={amount_kopecks}&a={account}&s={amount}",
                        view)
    assert url == "https://qr.nspk.ru/X?sum=123450&a=A%26B%201%2F2&s=1234.50"


def test_qr_svg_is_inline_and_labelled():
    svg = qr_svg("https://qr.nspk.ru/X?sum=1", "QR SBP")
    assert svg.startswith('<svg role="img"') and "<title>QR SBP</title>" in svg
    assert "<?xml" not in svg and "width=" not in svg.split(">")[0]
