"""Requests arriving by DNAT: redirects, 511, OS detection probes."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from debtgate.model import State
from debtgate.portal.state import PORTAL

from .conftest import PUBLIC, MemoryLink, as_ip, make_config, subscriber

IP = "100.64.0.10"


def dnat(host: str) -> dict[str, str]:
    return {"X-Forwarded-For": IP, "Host": host}


ANDROID = "connectivitycheck.gstatic.com"


async def android_probe(client, headers: dict[str, str] | None = None):
    """Android's connectivity check, the redirect not followed; by default straight
    from the test client (``Host`` only)."""
    return await client.get("/generate_204", headers=headers or {"Host": ANDROID},
                            allow_redirects=False)


async def test_intercepted_get_redirects_with_original_url(make_client):
    client = await make_client(MemoryLink({IP: subscriber(IP, State.BLOCKED)}))
    resp = await client.get("/news/today?id=7&x=%D0%B0", headers=dnat("News.Example.com"),
                            allow_redirects=False)
    assert resp.status == 302
    location = resp.headers["Location"]
    assert location.startswith(PUBLIC + "?url=")
    assert parse_qs(urlsplit(location).query)["url"] == [
        "http://news.example.com/news/today?id=7&x=%D0%B0"
    ]
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Connection"] == "close"
    assert "Server" not in resp.headers


async def raw_get(client, target: str, host: str) -> tuple[int, dict[str, str]]:
    """Send exactly these bytes (no client-side escaping) and parse the status and headers."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: {IP}\r\n\r\n".encode()
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    writer.close()
    status_line, *lines = head.strip().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers


@pytest.mark.parametrize(
    ("host", "target", "kept"),
    [
        ("a.example", "/x?q=%3Cscript%3E", "http://a.example/x?q=%3Cscript%3E"),
        ("a.example", "/x?q=<script>alert(1)</script>", None),
        ("a.example", '/x"onmouseover="alert(1)', None),
        ("a.example", "//evil.example/x", None),
        ("a.example", "/a\\b", None),
        ("a.example", "/" + "a" * 3000, None),  # longer than the 2048 cap
        ("evil.example@bank.example", "/", None),
        ("-bad-.example", "/", None),
        ("a.example:99999", "/", None),
        ("10.255.255.1:80", "/", None),  # the portal host on another port is not intercepted
    ],
)
async def test_hostile_intercepted_urls_are_dropped(make_client, host, target, kept):
    client = await make_client(MemoryLink({}))
    status, headers = await raw_get(client, target, host)
    if host.startswith("10.255.255.1"):
        assert status == 200  # a canonical host is not intercepted at all
        return
    assert status == 302
    query = parse_qs(urlsplit(headers["Location"]).query)
    assert query.get("url") == ([kept] if kept else None)
    assert headers["Location"].startswith(PUBLIC)


async def test_ten_kilobyte_url_is_refused(make_client):
    client = await make_client(MemoryLink({}))
    status, _ = await raw_get(client, "/" + "a" * 10_000, "a.example")
    assert status == 400


async def test_intercepted_post_gets_511(make_client):
    client = await make_client(MemoryLink({IP: subscriber(IP, State.BLOCKED)}))
    resp = await client.post("/api/upload", data=b"x=1", headers=dnat("app.example"))
    assert resp.status == 511
    html = await resp.text()
    assert f'href="{PUBLIC}' in html
    assert resp.headers["Connection"] == "close"
    assert resp.headers["Cache-Control"] == "no-store"


PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204", 204, b""),
    ("clients3.google.com", "/generate_204", 204, b""),
    ("captive.apple.com", "/hotspot-detect.html", 200, b"Success"),
    ("www.msftconnecttest.com", "/connecttest.txt", 200, b"Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt", 200, b"Microsoft NCSI"),
    ("detectportal.firefox.com", "/success.txt", 200, b"success\n"),
]


@pytest.mark.parametrize(("host", "path", "status", "body"), PROBES)
@pytest.mark.parametrize("state", [State.BLOCKED, State.PAUSED, State.DISABLED, State.WARN])
async def test_probes_open_sign_in_when_restricted(make_client, host, path, status, body, state):
    client = await make_client(MemoryLink({IP: subscriber(IP, state)}))
    resp = await client.get(path, headers=dnat(host), allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == PUBLIC
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("host", "path", "status", "body"), PROBES)
async def test_probes_answer_online_when_active_or_acknowledged(
    make_client, host, path, status, body
):
    link = MemoryLink({IP: subscriber(IP, State.ACTIVE)})
    client = await make_client(link)
    resp = await client.get(path, headers=dnat(host), allow_redirects=False)
    assert resp.status == status
    got = await resp.read()
    assert body in got if body else got == b""
    link.views[IP] = subscriber(IP, State.WARN, acknowledged=True)
    resp = await client.get(path, headers=dnat(host), allow_redirects=False)
    assert resp.status == status


async def test_probe_with_daemon_down_opens_sign_in(make_client):
    link = MemoryLink({})
    link.down = True
    client = await make_client(link)
    resp = await android_probe(client, dnat(ANDROID))
    assert resp.status == 302


async def test_probe_captive_verdict_is_remembered_until_acknowledged(make_client):
    link = MemoryLink({IP: subscriber(IP, State.WARN)})
    client = await make_client(link, make_config(probe_cache_ttl=60))
    for _ in range(3):
        resp = await android_probe(client, dnat(ANDROID))
        assert resp.status == 302 and resp.headers["Location"] == PUBLIC
    assert link.asked == 1  # the daemon was asked once
    # an acknowledgement forgets the verdict: the next probe asks again
    client.app[PORTAL].probes.forget(IP)
    link.views[IP] = subscriber(IP, State.WARN, acknowledged=True)
    resp = await android_probe(client, dnat(ANDROID))
    assert resp.status == 204 and link.asked == 2


async def test_acknowledgement_forgets_the_probe_verdict(make_client):
    link = MemoryLink({IP: subscriber(IP, State.WARN)})
    client = await make_client(link)
    portal = client.app[PORTAL]
    portal.probes.remember(IP)
    resp = await client.post("/ack", data={"csrf": portal.csrf.issue(IP)},
                             headers=as_ip(IP), allow_redirects=False)
    assert resp.status == 303 and link.acks == [IP]
    assert not portal.probes.known_captive(IP)


async def test_probe_verdicts_are_not_remembered_by_default(make_client):
    link = MemoryLink({IP: subscriber(IP, State.BLOCKED)})
    client = await make_client(link)
    resp = await android_probe(client, dnat(ANDROID))
    assert resp.status == 302
    link.views[IP] = subscriber(IP, State.ACTIVE)  # unblocked; a stale conntrack entry
    resp = await android_probe(client, dnat(ANDROID))
    assert resp.status == 204


async def test_probes_over_the_question_budget_open_sign_in_unasked(make_client):
    link = MemoryLink({})  # nobody's addresses: asked, they would be answered "online"
    client = await make_client(link, make_config(probe_question_rate=2))
    codes = []
    for i in range(5):
        resp = await client.get("/generate_204", allow_redirects=False, headers={
            "X-Forwarded-For": f"100.64.1.{i}", "Host": "connectivitycheck.gstatic.com"})
        codes.append(resp.status)
    assert codes == [204, 204, 302, 302, 302]
    assert link.asked == 2


# -- probes the gateway's DNAT brought here: answered with no question -----------------

PEER = "127.0.0.1"  # the test client's address; no trusted proxies in these tests


def dnat_config(**kw):
    return make_config(trusted_proxies=[], **kw)


@pytest.fixture
def dnated(monkeypatch):
    """Make the kernel say every connection was DNATed here."""
    import debtgate.portal.intercept as intercept

    seen = []

    def reached(transport):
        seen.append(transport)
        return True

    monkeypatch.setattr(intercept, "reached_by_dnat", reached)
    return seen


@pytest.mark.parametrize(("host", "path", "status", "body"), PROBES)
@pytest.mark.parametrize("state", [State.BLOCKED, State.PAUSED, State.DISABLED, State.WARN])
async def test_dnat_probes_open_sign_in_without_a_question(make_client, dnated, host, path,
                                                           status, body, state):
    link = MemoryLink({PEER: subscriber(PEER, state)})
    client = await make_client(link, dnat_config())
    for method in ("GET", "HEAD"):
        resp = await client.request(method, path, headers={"Host": host},
                                    allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == PUBLIC
        assert resp.headers["Connection"] == "close"
        assert resp.headers["Cache-Control"] == "no-store"
    assert link.asked == 0
    assert dnated and client.app[PORTAL].probes.by_dnat == 2


async def test_dnat_probe_trusts_the_network_over_a_stale_view(make_client, dnated):
    # The daemon would say "active" (the state changed after the connection was
    # DNATed; the unblock also cuts the tracked flows, so this is a race of moments):
    # the network's verdict at the connection's start is the answer, and asking the
    # daemon is not needed. The next probe, on a new connection, is not DNATed.
    link = MemoryLink({PEER: subscriber(PEER, State.ACTIVE)})
    client = await make_client(link, dnat_config())
    resp = await android_probe(client)
    assert resp.status == 302 and link.asked == 0


async def test_probe_not_dnated_still_asks(make_client, monkeypatch):
    import debtgate.portal.intercept as intercept

    monkeypatch.setattr(intercept, "reached_by_dnat", lambda transport: False)
    link = MemoryLink({PEER: subscriber(PEER, State.ACTIVE)})
    client = await make_client(link, dnat_config())
    resp = await android_probe(client)
    assert resp.status == 204 and link.asked == 1


async def test_dnat_of_a_trusted_proxy_says_nothing_of_its_client(make_client, dnated):
    # the peer is a trusted proxy: its connection's NAT is not the client's
    link = MemoryLink({IP: subscriber(IP, State.ACTIVE)})
    client = await make_client(link)
    resp = await android_probe(client, dnat(ANDROID))
    assert resp.status == 204 and link.asked == 1
    assert not dnated  # not even looked at


async def test_dnat_changes_nothing_for_other_intercepted_requests(make_client, dnated):
    link = MemoryLink({PEER: subscriber(PEER, State.BLOCKED)})
    client = await make_client(link, dnat_config())
    resp = await client.get("/news", headers={"Host": "news.example"}, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith(
        PUBLIC + "?url=http%3A%2F%2Fnews.example%2Fnews&sig=")
    resp = await client.post("/upload", data=b"x", headers={"Host": "news.example"})
    assert resp.status == 511
    assert link.asked == 0


async def test_canonical_host_is_not_a_probe_even_when_dnated(make_client, dnated):
    # an active host on the portal's own name gets its page, asked as always
    link = MemoryLink({PEER: subscriber(PEER, State.ACTIVE)})
    client = await make_client(link, dnat_config())
    resp = await client.get("/api/state", headers={"Host": "10.255.255.1:8080"})
    assert resp.status == 200 and (await resp.json())["online"] is True
    resp = await client.get("/generate_204", headers={"Host": "10.255.255.1:8080"})
    assert resp.status == 404
    assert link.asked == 1
