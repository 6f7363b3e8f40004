"""Each state renders its facts, in Russian and in English."""

from __future__ import annotations

import re

import pytest

from debtgate.model import State

from .conftest import MemoryLink, as_ip, make_config, signed, subscriber

NBSP = "\u00a0"
IP = "100.64.0.10"


def visible_text(html: str) -> str:
    """What a reader sees: no tags, no attributes, no scripts, no SVG."""
    html = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize(
    ("lang", "amount", "since", "words"),
    [
        ("ru", f"1{NBSP}234,50{NBSP}₽", "5 марта 2025\u202fг.", "приостановлен до оплаты"),
        ("en", f"RUB{NBSP}1,234.50", "March 5, 2025", "paused until payment"),
    ],
)
async def test_blocked_page_shows_facts_and_ways_to_pay(make_client, lang, amount, since, words):
    client = await make_client(MemoryLink({IP: subscriber(IP, State.BLOCKED, language=lang)}))
    resp = await client.get("/", headers=as_ip(IP))
    assert resp.status == 200
    html = await resp.text()
    assert f'<html lang="{lang}">' in html
    assert words in html
    assert amount in html
    assert since in html
    assert "•••3456" in visible_text(html)
    assert "ACC0000123456" not in visible_text(html)
    assert 'href="https://pay.example.net/?acc=ACC0000123456&amp;sum=1234.50"' in html
    assert 'href="https://my.example.net/"' in html
    assert "sum=123450&amp;cur=RUB&amp;account=ACC0000123456" in html
    assert "<svg" in html and 'class="qr"' in html
    assert 'href="tel:+78005553535"' in html
    assert "<main" in html and "<header" in html and "<footer" in html
    assert len(resp.headers["Content-Security-Policy"]) > 0
    assert len(html.encode()) < 15_000
    assert resp.headers["Content-Language"] == lang


@pytest.mark.parametrize(
    ("lang", "amount", "date_text", "button"),
    [
        ("ru", f"1{NBSP}234,50{NBSP}₽", "20 марта 2025\u202fг.", "Понятно, продолжить"),
        ("en", f"RUB{NBSP}1,234.50", "March 20, 2025", "Got it, continue"),
    ],
)
async def test_warn_page_has_amount_date_and_continue_form(
    make_client, lang, amount, date_text, button
):
    client = await make_client(MemoryLink({IP: subscriber(IP, State.WARN, language=lang)}))
    resp = await client.get("/", params=signed(IP, "http://news.example/a?b=1"), headers=as_ip(IP))
    html = await resp.text()
    assert amount in html and date_text in html and button in html
    assert '<form method="post" action="/ack">' in html
    assert re.search(r'name="csrf" value="[0-9a-f]+\.[A-Za-z0-9_-]+"', html)
    assert 'name="url" value="http://news.example/a?b=1"' in html
    assert "<svg" in html


@pytest.mark.parametrize(
    ("state", "lang", "phrase"),
    [
        (State.PAUSED, "ru", "Как возобновить"),
        (State.PAUSED, "en", "How to resume"),
        (State.DISABLED, "ru", "Позвонить +7 (800) 555-35-35"),
        (State.DISABLED, "en", "Call +7 (800) 555-35-35"),
        (State.ACTIVE, "ru", "Интернет работает"),
        (State.ACTIVE, "en", "You're online"),
    ],
)
async def test_other_states(make_client, state, lang, phrase):
    view = subscriber(IP, state, language=lang)
    client = await make_client(MemoryLink({IP: view}))
    resp = await client.get("/", params=signed(IP, "https://news.example/x"), headers=as_ip(IP))
    assert resp.status == 200
    html = await resp.text()
    assert phrase in html
    if state is State.ACTIVE:
        assert 'href="https://news.example/x"' in html
        assert "<script" not in html
    else:
        assert "•••3456" in html
        assert 'fetch("/api/state"' in html
    assert "<svg" not in html  # no QR outside blocked/warn


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_unknown_address_reveals_nothing(make_client, lang):
    client = await make_client(MemoryLink({IP: subscriber(IP, State.BLOCKED)}))
    resp = await client.get("/", params={"lang": lang}, headers=as_ip("100.64.9.9"))
    assert resp.status == 200
    html = await resp.text()
    for secret in ("3456", "1234", "234,50", "₽", "ACC", "<form", "<svg", "fetch("):
        assert secret not in html


async def test_language_choice_order(make_client):
    link = MemoryLink({IP: subscriber(IP, State.BLOCKED, language="")})
    client = await make_client(link, make_config(default_language="ru"))
    h = as_ip(IP)
    assert 'lang="ru"' in await (await client.get("/", headers=h)).text()
    h_en = {**h, "Accept-Language": "de-DE,en;q=0.8,ru;q=0.5"}
    assert '<html lang="en">' in await (await client.get("/", headers=h_en)).text()
    link.views[IP] = subscriber(IP, State.BLOCKED, language="ru")
    assert '<html lang="ru">' in await (await client.get("/", headers=h_en)).text()
    html = await (await client.get("/", params={"lang": "en"}, headers=h_en)).text()
    assert '<html lang="en">' in html
    # the visible switch links to the other language and keeps the original URL
    html = await (await client.get("/", params={"lang": "en", **signed(IP, "http://a.example/")},
                                   headers=h)).text()
    assert re.search(r'href="/\?url=http%3A%2F%2Fa.example%2F&amp;sig=[^"&]+&amp;lang=ru"', html)


async def test_templates_dir_overrides_shipped(make_client, tmp_path):
    (tmp_path / "blocked.html").write_text(
        '{% extends "_layout.html" %}{% block content %}CUSTOM {{ amount }} '
        '{{ "<b>" }} {% trans %}Ways to pay{% endtrans %}{% endblock %}'
    )
    link = MemoryLink({IP: subscriber(IP, State.BLOCKED, language="en")})
    client = await make_client(link, make_config(templates_dir=tmp_path))
    html = await (await client.get("/", headers=as_ip(IP))).text()
    assert f"CUSTOM RUB{NBSP}1,234.50 &lt;b&gt; Ways to pay" in html  # autoescape stays on
    # One set of templates: the override serves every language, translated.
    html_ru = await (await client.get("/", params={"lang": "ru"}, headers=as_ip(IP))).text()
    assert f"CUSTOM 1{NBSP}234,50{NBSP}₽ &lt;b&gt; Как оплатить" in html_ru
    warn = MemoryLink({IP: subscriber(IP, State.WARN, language="ru")})
    client = await make_client(warn, make_config(templates_dir=tmp_path))
    assert "Понятно, продолжить" in await (await client.get("/", headers=as_ip(IP))).text()


async def test_an_operator_adds_a_language_with_one_catalogue(make_client, tmp_path):
    po = tmp_path / "locale" / "de" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
                  '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
                  'msgid "Your Internet access is paused until payment"\n'
                  'msgstr "Ihr Internetzugang ist bis zur Zahlung gesperrt"\n')
    link = MemoryLink({IP: subscriber(IP, State.BLOCKED, language="de")})
    client = await make_client(link, make_config(templates_dir=tmp_path))
    html = await (await client.get("/", headers=as_ip(IP))).text()
    assert '<html lang="de">' in html
    assert "Ihr Internetzugang ist bis zur Zahlung gesperrt" in html
    assert f"1.234,50{NBSP}RUB" in html  # German money, by Babel
    assert "Ways to pay" in html  # not translated in this catalogue: the English text
    assert 'hreflang="de"' not in html and 'hreflang="ru"' in html  # the switch lists it


async def test_daemon_down_shows_neutral_503(make_client):
    link = MemoryLink({IP: subscriber(IP, State.BLOCKED)})
    link.down = True
    client = await make_client(link)
    resp = await client.get("/", headers=as_ip(IP))
    assert resp.status == 503
    assert "3456" not in await resp.text()


async def test_portal_host_lookup_is_port_insensitive(make_client):
    client = await make_client(MemoryLink({IP: subscriber(IP, State.ACTIVE)}))
    resp = await client.get("/", headers={"X-Forwarded-For": IP, "Host": "10.255.255.1"},
                            allow_redirects=False)
    assert resp.status == 200
    assert "You&#39;re online" in await resp.text() or "Интернет работает" in await resp.text()
