"""Who is asking, CSRF, rate limits, headers, open redirects, the JSON APIs."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from decimal import Decimal

import pytest

from debtgate.model import State

from .conftest import (
    PORTAL_HOST,
    Clock,
    MemoryLink,
    as_ip,
    make_config,
    signed,
    subscriber,
)

A, B = "100.64.0.10", "100.64.0.11"


def two_subscribers() -> MemoryLink:
    return MemoryLink({
        A: subscriber(A, State.BLOCKED, account="AAAA1111", amount_due=Decimal("111.11")),
        B: subscriber(B, State.WARN, account="BBBB2222", amount_due=Decimal("222.22")),
    })


async def csrf_of(client, ip: str) -> str:
    html = await (await client.get("/", headers=as_ip(ip))).text()
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def test_each_address_sees_only_its_own_data(make_client):
    client = await make_client(two_subscribers())
    html_a = await (await client.get("/", params={"lang": "en"}, headers=as_ip(A))).text()
    html_b = await (await client.get("/", params={"lang": "en"}, headers=as_ip(B))).text()
    assert "111.11" in html_a and "1111" in html_a
    assert "222.22" not in html_a and "2222" not in html_a
    assert "222.22" in html_b and "2222" in html_b
    assert "111.11" not in html_b and "1111" not in html_b
    # query parameters cannot ask for another address
    html = await (await client.get("/", params={"ip": B, "address": B},
                                   headers=as_ip(A))).text()
    assert "2222" not in html
    state_a = await (await client.get("/api/state", headers=as_ip(A))).json()
    state_b = await (await client.get("/api/state", headers=as_ip(B))).json()
    assert state_a == {"state": "blocked", "online": False}
    assert state_b == {"state": "warn", "online": False}


async def test_forwarded_for_ignored_from_untrusted_peer(make_client):
    client = await make_client(two_subscribers(), make_config(trusted_proxies=[]))
    resp = await client.get("/api/state", headers=as_ip(A))
    assert await resp.json() == {"state": "unknown", "online": False}  # asked as 127.0.0.1


async def test_forwarded_for_takes_rightmost_untrusted_hop(make_client):
    client = await make_client(two_subscribers())
    headers = {"Host": PORTAL_HOST, "X-Forwarded-For": f"{B}, {A}, 127.0.0.5"}
    assert (await (await client.get("/api/state", headers=headers)).json())["state"] == "blocked"


async def test_warn_acknowledge_flow(make_client):
    link = two_subscribers()
    client = await make_client(link)
    token = await csrf_of(client, B)
    resp = await client.post(
        "/ack", data={"csrf": token, **signed(B, "https://news.example/a?b=1")}, headers=as_ip(B),
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "https://news.example/a?b=1"
    assert link.acks == [B]
    assert await (await client.get("/api/state", headers=as_ip(B))).json() == {
        "state": "warn", "online": True}


@pytest.mark.parametrize("token", [None, "", "zz.zz", "1.AAAA", "garbage" * 20])
async def test_ack_without_valid_csrf_is_403(make_client, token):
    link = two_subscribers()
    client = await make_client(link)
    data = {"url": "https://news.example/"} if token is None else {"csrf": token}
    resp = await client.post("/ack", data=data, headers=as_ip(B), allow_redirects=False)
    assert resp.status == 403
    assert link.acks == []


async def test_csrf_token_is_bound_to_the_address(make_client):
    link = two_subscribers()
    client = await make_client(link)
    token_b = await csrf_of(client, B)
    resp = await client.post("/ack", data={"csrf": token_b}, headers=as_ip(A),
                             allow_redirects=False)
    assert resp.status == 403
    assert link.acks == []


@pytest.mark.parametrize(
    "hostile",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>x</script>",
     "//evil.example/", "/\\evil.example", "https:evil.example", "http://a.example/\r\nX: y",
     "http://a.example/<script>", "http://" + "a" * 3000 + ".example/", "ftp://a.example/"],
)
async def test_hostile_original_url_is_neutralised(make_client, hostile):
    link = two_subscribers()
    client = await make_client(link)
    token = await csrf_of(client, B)
    resp = await client.post("/ack", data={"csrf": token, "url": hostile}, headers=as_ip(B),
                             allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/?")  # back to the portal, not elsewhere
    link.views[A] = subscriber(A, State.ACTIVE)
    html = await (await client.get("/", params={"url": hostile}, headers=as_ip(A))).text()
    assert "evil.example" not in html and "javascript" not in html.lower()
    assert "<script>x" not in html and "ftp:" not in html


async def test_rate_limit_gives_429_per_address(make_client):
    clock = Clock()
    client = await make_client(two_subscribers(), make_config(rate_limit=1.0, rate_burst=3),
                               clock)
    codes = [(await client.get("/api/state", headers=as_ip(A))).status for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    resp = await client.get("/api/state", headers=as_ip(A))
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert (await client.get("/api/state", headers=as_ip(B))).status == 200  # other address
    clock.now += 1.0
    assert (await client.get("/api/state", headers=as_ip(A))).status == 200


async def test_security_headers_and_no_server_banner(make_client):
    client = await make_client(two_subscribers())
    resp = await client.get("/", headers=as_ip(A))
    html = await resp.text()
    csp = resp.headers["Content-Security-Policy"]
    # Inline style and script are allowed by their SHA-256 hashes, nothing else is.
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    script = re.search(r"<script>(.*?)</script>", html, re.S)
    assert style and script and "nonce" not in html
    for content in (style.group(1), script.group(1)):
        digest = base64.b64encode(hashlib.sha256(content.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert re.search(r"style-src 'sha256-[^;]+'; script-src 'sha256-[^;]+';", csp)
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "img-src data:" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Server" not in resp.headers
    other = await client.get("/", headers=as_ip(B))
    assert other.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_body_size_is_limited(make_client):
    client = await make_client(two_subscribers())
    resp = await client.post("/ack", data={"csrf": "x" * 10_000}, headers=as_ip(B))
    assert resp.status == 413


async def test_rfc8908_api(make_client):
    config = make_config(venue_info_url="https://www.example.net/")
    link = two_subscribers()
    link.views["100.64.0.12"] = subscriber("100.64.0.12", State.ACTIVE)
    client = await make_client(link, config)
    resp = await client.get("/api/captive", headers=as_ip(A))
    assert resp.headers["Content-Type"].startswith("application/captive+json")
    assert "no-store" in resp.headers["Cache-Control"]
    assert json.loads(await resp.text()) == {
        "captive": True,
        "user-portal-url": "http://10.255.255.1:8080/",
        "can-extend-session": False,
        "venue-info-url": "https://www.example.net/",
    }
    active = json.loads(await (await client.get("/api/captive",
                                                headers=as_ip("100.64.0.12"))).text())
    assert active["captive"] is False
    unknown = json.loads(await (await client.get("/api/captive",
                                                 headers=as_ip("100.64.0.99"))).text())
    assert unknown == {"captive": False}


async def test_rfc8908_portal_url_is_https_when_tls_is_configured(make_client, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    config = make_config(https_port=8443, tls_cert_file=cert, tls_key_file=key)
    client = await make_client(two_subscribers(), config)
    data = json.loads(await (await client.get("/api/captive", headers=as_ip(A))).text())
    assert data["user-portal-url"] == "https://10.255.255.1:8443/"


async def test_post_to_page_is_not_allowed_and_unknown_paths_are_404(make_client):
    client = await make_client(two_subscribers())
    assert (await client.post("/", headers=as_ip(A))).status == 405
    assert (await client.get("/wp-admin", headers=as_ip(A))).status == 404
