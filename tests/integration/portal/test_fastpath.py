"""The HTTP listener's fast path answers GET / like the application does, and hands
everything else (in order) to aiohttp."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket

import pytest

from debtgate.model import State
from debtgate.portal.server import start
from debtgate.view import SubscriberView

from .conftest import MemoryLink, make_config, subscriber

A, B = "127.0.0.1", "127.0.0.2"


class PeekLink(MemoryLink):
    """A link with a view cache, as the real one: the fast path answers synchronously."""

    def peek(self, ip: str) -> tuple[bool, SubscriberView | None]:
        return True, self.views.get(ip)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Response = tuple[int, dict[str, str], bytes]


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"duplicate {name}"
            headers[name.lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


@pytest.fixture
async def portal():
    runners = []

    async def factory(link: MemoryLink, **kw: object) -> int:
        port = free_port()
        config = make_config(listen="127.0.0.1", port=port, trusted_proxies=[],
                             public_url=f"http://127.0.0.1:{port}/", **kw)
        runners.append(await start(config, link, secret=b"k" * 32))
        return port

    yield factory
    for runner in runners:
        await runner.cleanup()


async def connect(port: int, source: str = A):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def exchange(port: int, request: bytes, count: int = 1, source: str = A
                   ) -> list[Response]:
    """Send ``request`` (one or more pipelined) on a new connection from ``source``,
    read ``count`` responses, close."""
    reader, writer = await connect(port, source)
    writer.write(request)
    answers = [await read_response(reader) for _ in range(count)]
    writer.close()
    return answers


def get(port: int, target: str = "/", extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()


@pytest.mark.parametrize("link_class", [MemoryLink, PeekLink])
async def test_fast_page_equals_application_page(portal, link_class):
    link = link_class({A: subscriber(A, State.BLOCKED)})
    port = await portal(link)
    reader, writer = await connect(port)
    writer.write(get(port, "/?lang=en") + get(port, "/?lang=en"))
    fast = [await read_response(reader) for _ in range(2)]
    # Content-Length makes the fast path hand the request to aiohttp.
    writer.write(get(port, "/?lang=en", "Content-Length: 0\r\n"))
    slow = await read_response(reader)
    writer.close()
    assert slow[1].pop("date")
    for status, headers, body in fast:
        assert status == 200 and body == slow[2]
        assert "server" not in headers and "connection" not in headers
        assert headers.pop("date")
        assert headers == slow[1] | {"content-type": "text/html; charset=utf-8"}
    status, headers, body = fast[0]
    assert b"1\xc2\xa0234.50" in body or b"1,234.50" in body
    csp = headers["content-security-policy"]
    style = re.search(rb"<style>(.*?)</style>", body, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1)).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-language"] == "en"


async def test_each_address_sees_its_own_page(portal):
    link = PeekLink({A: subscriber(A, State.BLOCKED, account="ACC0000111111"),
                     B: subscriber(B, State.BLOCKED, account="ACC0000222222")})
    port = await portal(link)
    for source, mine, other in ((A, b"1111", b"2222"), (B, b"2222", b"1111"),
                                (A, b"1111", b"2222")):
        [(status, _, body)] = await exchange(port, get(port), source=source)
        assert status == 200 and mine in body and other not in body


async def test_pipelined_requests_keep_their_order_across_the_handover(portal):
    link = PeekLink({A: subscriber(A, State.BLOCKED)})
    port = await portal(link)
    codes = await exchange(port, get(port) + get(port, "/api/state") + get(port), 3)
    assert [c[0] for c in codes] == [200, 200, 200]
    assert codes[0][1]["content-type"].startswith("text/html")
    assert codes[1][2] == b'{"state": "blocked", "online": false}'
    assert codes[2][1]["content-type"].startswith("text/html")


async def test_rate_limit_runs_on_the_fast_path(portal):
    link = PeekLink({A: subscriber(A, State.BLOCKED)})
    port = await portal(link, rate_limit=0.001, rate_burst=2)
    answers = await exchange(port, get(port) * 3, 3)
    assert [a[0] for a in answers] == [200, 200, 429]
    assert int(answers[2][1]["retry-after"]) >= 1
    assert answers[2][1]["x-frame-options"] == "DENY"


async def test_intercepted_and_odd_requests_go_to_the_application(portal):
    link = PeekLink({A: subscriber(A, State.BLOCKED)})
    port = await portal(link)
    reader, writer = await connect(port)
    writer.write(b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n")
    status, headers, _ = await read_response(reader)
    assert status == 302 and headers["connection"] == "close"
    writer.close()
    reader, writer = await connect(port)
    writer.write(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n0\r\n\r\n".encode())
    status, _, _ = await read_response(reader)
    assert status == 405
    writer.write(get(port))  # the connection now belongs to aiohttp and still works
    status, _, body = await read_response(reader)
    assert status == 200 and b"<html" in body
    writer.close()


async def test_warn_page_gets_fresh_tokens_on_the_fast_path(portal):
    link = PeekLink({A: subscriber(A, State.WARN)})
    port = await portal(link)
    bodies = [body for _, _, body in await exchange(port, get(port) * 2, 2)]
    tokens = [re.search(rb'name="csrf" value="([^"]+)"', b) for b in bodies]
    assert all(tokens)
    for body in bodies:
        assert b'value="csrf' not in body  # no placeholder left


async def test_daemon_down_gives_503_on_the_fast_path(portal):
    link = MemoryLink({A: subscriber(A, State.BLOCKED)})
    link.down = True
    port = await portal(link)
    [(status, headers, _)] = await exchange(port, get(port))
    assert status == 503 and headers["cache-control"] == "no-store"


# -- OS probes the gateway's DNAT brought here ------------------------------------------

PROBE = (b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
         b"User-Agent: Dalvik/2.1.0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def nat(monkeypatch):
    """Say which layer sees the connection as DNATed: the fast path, the application."""
    import debtgate.portal.fastpath as fastpath
    import debtgate.portal.intercept as intercept

    def set_(fast: bool, app: bool) -> None:
        monkeypatch.setattr(fastpath, "reached_by_dnat", lambda transport: fast)
        monkeypatch.setattr(intercept, "reached_by_dnat", lambda transport: app)

    return set_


async def test_dnat_probe_is_answered_on_the_fast_path_without_a_question(portal, nat):
    # Only the fast path sees the DNAT: had aiohttp answered, it would have asked the
    # daemon and said "online" (204) for this active address.
    nat(fast=True, app=False)
    link = MemoryLink({A: subscriber(A, State.ACTIVE)})
    port = await portal(link)
    reader, writer = await connect(port)
    writer.write(PROBE + get(port))  # the pipelined request is not answered: closed
    status, headers, body = await read_response(reader)
    assert status == 302 and headers["location"] == f"http://127.0.0.1:{port}/"
    assert headers["connection"] == "close" and headers["cache-control"] == "no-store"
    assert body == b""
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after the answer
    writer.close()
    assert link.asked == 0


@pytest.mark.parametrize("probe", [
    PROBE,
    b"GET /hotspot-detect.html HTTP/1.1\r\nHost: captive.apple.com\r\n\r\n",
    b"GET /connecttest.txt HTTP/1.1\r\nHost: www.msftconnecttest.com\r\n"
    b"Connection: keep-alive\r\n\r\n",
    b"GET /generate_204?x=1 HTTP/1.1\r\nHost: clients3.google.com:80\r\n\r\n",
])
async def test_fast_sign_in_equals_the_application_sign_in(portal, nat, probe):
    answers = []
    for fast_path in (True, False):
        nat(fast=fast_path, app=not fast_path)
        link = MemoryLink({A: subscriber(A, State.BLOCKED)})
        port = await portal(link, fast_path=fast_path)
        [(status, headers, body)] = await exchange(port, probe)
        assert headers.pop("date")
        headers["location"] = headers["location"].replace(str(port), "PORT")
        answers.append((status, headers, body))
        assert link.asked == 0
    assert answers[0] == answers[1]
    assert answers[0][0] == 302


@pytest.mark.parametrize("probe", [
    b"HEAD /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
    b"GET /generate%5f204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
    b"GET /x/../generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
    b"GET /generate_204 HTTP/1.0\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
    b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
    b"Connection: upgrade\r\nUpgrade: h2c\r\n\r\n",
    b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
    b"Host: captive.apple.com\r\n\r\n",
])
async def test_probes_the_fast_path_is_unsure_of_go_to_the_application(portal, nat, probe):
    nat(fast=True, app=False)
    link = MemoryLink({A: subscriber(A, State.ACTIVE)})
    port = await portal(link)
    [(status, _, _)] = await exchange(port, probe)
    assert status != 302  # aiohttp answered (asked the daemon: online, or refused it)


async def test_probe_not_dnated_goes_to_the_application_which_asks(portal, nat):
    nat(fast=False, app=False)
    link = MemoryLink({A: subscriber(A, State.ACTIVE)})
    port = await portal(link)
    [(status, headers, _)] = await exchange(port, PROBE)
    assert status == 204 and headers["connection"] == "close" and link.asked == 1


async def test_dnat_probe_takes_a_rate_limit_token(portal, nat):
    nat(fast=True, app=True)
    link = MemoryLink({A: subscriber(A, State.BLOCKED)})
    port = await portal(link, rate_limit=0.001, rate_burst=1)
    codes = []
    for _ in range(2):
        [(code, _, _)] = await exchange(port, PROBE)
        codes.append(code)
    assert codes == [302, 429] and link.asked == 0


async def test_real_kernel_without_nat_is_not_dnat(portal):
    # no monkeypatch: a plain loopback connection has no NAT record (or one whose
    # destination is the socket's own address); the probe is asked about
    link = MemoryLink({A: subscriber(A, State.ACTIVE)})
    port = await portal(link)
    [(status, _, _)] = await exchange(port, PROBE)
    assert status == 204 and link.asked == 1
