"""The original URL: the portal links ("Continue") and redirects (``POST /ack``) only to
a URL its own interception produced and signed for the asking address, over the
aiohttp application and over the fast path of the real listener."""

from __future__ import annotations

import asyncio
import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from debtgate.model import State
from debtgate.portal.security import UrlSigner
from debtgate.portal.server import start

from .conftest import PUBLIC, MemoryLink, as_ip, subscriber
from .test_fastpath import A, PeekLink, exchange, free_port, get, make_config

IP = "100.64.0.7"
EVIL = "https://evil.example/"
SECRET = b"s" * 32  # the conftest client's secret


def hidden(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    return html.unescape(found.group(1)) if found else None


async def intercepted(client, target: str, host: str = "example.com") -> str:
    """The portal-relative target of the 302 an intercepted GET gets."""
    resp = await client.get(target, headers={"X-Forwarded-For": IP, "Host": host},
                            allow_redirects=False)
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith(PUBLIC)
    return "/" + location[len(PUBLIC):]


async def ack(client, page: str, **fields: str):
    form = {"csrf": hidden(page, "csrf") or "", "lang": "en"}
    for name in ("url", "sig"):
        value = hidden(page, name)
        if value is not None:
            form[name] = value
    form.update(fields)
    return await client.post("/ack", data=form, headers=as_ip(IP), allow_redirects=False)


def warned() -> MemoryLink:
    return MemoryLink({IP: subscriber(IP, State.WARN)})


async def test_intercepted_url_comes_back_after_ack(make_client):
    """The legitimate flow: intercepted http://example.com/page -> warn page -> ack ->
    back to http://example.com/page."""
    client = await make_client(warned())
    target = await intercepted(client, "/page?q=1")
    query = parse_qs(urlsplit(target).query)
    assert query["url"] == ["http://example.com/page?q=1"] and query["sig"]
    resp = await client.get(target + "&lang=en", headers=as_ip(IP))
    page = await resp.text()
    assert hidden(page, "url") == "http://example.com/page?q=1"
    resp = await ack(client, page)
    assert resp.status == 303
    assert resp.headers["Location"] == "http://example.com/page?q=1"


async def test_active_page_links_the_intercepted_url(make_client):
    link = MemoryLink({IP: subscriber(IP, State.ACTIVE)})
    client = await make_client(link)
    target = await intercepted(client, "/page")
    page = await (await client.get(target, headers=as_ip(IP))).text()
    assert 'href="http://example.com/page"' in page


@pytest.mark.parametrize("state", [State.WARN, State.ACTIVE, State.BLOCKED])
async def test_forged_url_is_never_linked(make_client, state):
    client = await make_client(MemoryLink({IP: subscriber(IP, state)}))
    resp = await client.get("/?" + urlencode({"url": EVIL, "lang": "en"}),
                            headers=as_ip(IP))
    assert resp.status == 200
    page = await resp.text()
    assert "evil.example" not in page


async def test_forged_url_is_not_the_ack_location(make_client):
    link = warned()
    client = await make_client(link)
    page = await (await client.get("/?" + urlencode({"url": EVIL}), headers=as_ip(IP))).text()
    resp = await ack(client, page, url=EVIL)
    assert resp.status == 303 and link.acks == [IP]
    location = resp.headers["Location"]
    assert "evil" not in location and location.startswith("/") \
        and not location.startswith("//")
    assert location == "/?lang=en"


async def test_forged_sig_and_tampering_are_refused(make_client):
    link = warned()
    client = await make_client(link)
    target = await intercepted(client, "/page")
    query = parse_qs(urlsplit(target).query)
    url, sig = query["url"][0], query["sig"][0]
    page = await (await client.get(target, headers=as_ip(IP))).text()
    stamp, mac = sig.split(".")
    flipped = stamp + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    other_ip = UrlSigner(SECRET).sign("100.64.0.8", url)
    other_key = UrlSigner(b"x" * 32).sign(IP, url)
    for fields in (
        {"url": EVIL, "sig": sig},                       # the signature of another URL
        {"url": url + "x", "sig": sig},                  # the URL changed
        {"url": url, "sig": flipped},                    # the signature changed
        {"url": url, "sig": other_ip},                   # signed for another address
        {"url": url, "sig": other_key},                  # signed with another key
        {"url": url, "sig": ""},
        {"url": url, "sig": "0." + mac},
    ):
        resp = await client.get("/?" + urlencode(fields), headers=as_ip(IP))
        assert hidden(await resp.text(), "url") is None, fields
        resp = await ack(client, page, **fields)
        assert resp.status == 303 and resp.headers["Location"] == "/?lang=en", fields


async def test_expired_signature_is_refused(make_client):
    client = await make_client(warned())
    url = "http://example.com/page"
    old = UrlSigner(SECRET, clock=lambda: 1000.0).sign(IP, url)
    resp = await client.get("/?" + urlencode({"url": url, "sig": old}), headers=as_ip(IP))
    assert hidden(await resp.text(), "url") is None


@pytest.mark.parametrize("raw", [
    "//evil.example/", "javascript:alert(1)", "https:\\\\evil.example\\",
    "http:/\\evil.example/", "/\\evil.example", " https://evil.example/",
    "https://evil.example/\\@example.com/", "data:text/html,<script>x</script>",
    "https://user@evil.example/", "HTTPS://evil.example/",
])
async def test_scheme_tricks_are_dropped_even_when_signed(make_client, raw):
    """Defence in depth: even a value signed with the portal's key is linked and
    redirected to only if it is exactly a sane absolute http(s) URL."""
    link = warned()
    client = await make_client(link)
    sig = UrlSigner(SECRET).sign(IP, raw)
    resp = await client.get("/?" + urlencode({"url": raw, "sig": sig, "lang": "en"}),
                            headers=as_ip(IP))
    page = await resp.text()
    assert "evil" not in page and "javascript" not in page and hidden(page, "url") is None
    resp = await ack(client, page, url=raw, sig=sig)
    assert resp.status == 303 and resp.headers["Location"] == "/?lang=en"


async def test_fast_path_links_only_signed_urls():
    """The real listener, whose fast path answers GET / itself: a forged url is not
    linked, the one its interception produced is, and the ack goes back to it."""
    port = free_port()
    config = make_config(listen="127.0.0.1", port=port, trusted_proxies=[],
                         public_url=f"http://127.0.0.1:{port}/")
    link = PeekLink({A: subscriber(A, State.WARN)})
    runner = await start(config, link, secret=b"k" * 32)
    try:
        [(status, headers, body)] = await exchange(
            port, get(port, "/?" + urlencode({"url": EVIL, "lang": "en"})))
        assert status == 200 and b"evil.example" not in body
        assert "content-length" in headers and "connection" not in headers  # fast path
        [(status, headers, _)] = await exchange(
            port, b"GET /page HTTP/1.1\r\nHost: example.com\r\n\r\n")
        assert status == 302
        target = headers["location"][len(f"http://127.0.0.1:{port}"):]
        [(status, _, body)] = await exchange(port, get(port, target))
        page = body.decode()
        assert status == 200 and hidden(page, "url") == "http://example.com/page"
        form = urlencode({"csrf": hidden(page, "csrf"), "url": hidden(page, "url"),
                          "sig": hidden(page, "sig"), "lang": "en"}).encode()
        [(status, headers, _)] = await exchange(port, (
            f"POST /ack HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(form)}\r\n\r\n").encode() + form)
        assert status == 303 and headers["location"] == "http://example.com/page"
    finally:
        await runner.cleanup()
        await asyncio.sleep(0)


async def test_self_service_form_keeps_only_a_signed_url(make_client):
    client = await make_client(warned())
    page = await (await client.get("/?lang=en", headers=as_ip(IP))).text()
    form = {"csrf": hidden(page, "csrf") or "", "request_id": "k" * 24, "lang": "en"}
    resp = await client.post("/promise", data={**form, "url": EVIL}, headers=as_ip(IP),
                             allow_redirects=False)
    assert resp.status == 303 and "evil" not in resp.headers["Location"]
    target = await intercepted(client, "/page")
    query = parse_qs(urlsplit(target).query)
    resp = await client.post("/promise", data={**form, "url": query["url"][0],
                                               "sig": query["sig"][0]},
                             headers=as_ip(IP), allow_redirects=False)
    location = resp.headers["Location"]
    assert location.startswith("/?url=http%3A%2F%2Fexample.com%2Fpage&sig=")
    page = await (await client.get(location, headers=as_ip(IP))).text()
    assert hidden(page, "url") == "http://example.com/page"
