"""The portal's front door: the HTTP listener's own answers, before the framework.

Almost every request a portal sees is ``GET /`` (or ``GET /?url=…``) from a restricted
subscriber's browser on a keep-alive connection, or a ``GET`` of some other site that
the gateway's DNAT brought here. :class:`FastProtocol` reads each request head with
httptools (llhttp, strict; :mod:`.head`) and answers exactly these itself, with
pre-built bytes (:mod:`.wire`):

* ``GET /[?query] HTTP/1.1`` on the portal's own Host: the stub page, from the page
  cache (keep-alive);
* ``GET`` on a foreign Host (interception): the ``302`` to ``public_url`` with the
  signed original URL and ``Connection: close``; then the connection is closed;
* an OS detection probe (:mod:`.probes`) on a connection the gateway's DNAT brought
  here (:mod:`.nat`): only captive addresses are DNATed, so the sign-in ``302`` (no
  ``url``), with no question to the daemon. A probe not DNATed goes to aiohttp (it asks).

At the first request it does not own it hands the connection to aiohttp (the same
application and middleware) with every byte not answered yet; aiohttp parses from that
request's first byte. On any doubt it hands over: anything llhttp refuses, a method
other than ``GET``, HTTP/1.0, a body, ``Content-Length``, ``Transfer-Encoding``,
``Expect``, ``Upgrade``, ``X-Forwarded-For``..., a ``Connection`` other than
``keep-alive`` (or ``close`` on a foreign Host), any duplicated header, a non-ASCII
Host or Accept-Language, an oversized head or header, a bare LF, a target with escapes,
dot segments or a fragment (:mod:`.head`), a ``public_url`` that is not plain ASCII.

What the door does is what the application does for that request: the asking address
is the TCP peer (with trusted proxies configured, a connection from a trusted proxy
goes to aiohttp, which reads ``X-Forwarded-For``), the per-address rate limit takes a
token (429 when empty), the daemon's view comes from the link's cache or, on a miss,
from the daemon (the connection waits, later requests queue), and the response carries
the same security headers, the page's hash-based CSP and no ``Server`` banner. Idle
connections are closed after ``KEEPALIVE`` seconds, as aiohttp does. A differential
fuzz test (tests/integration/portal/test_door_fuzz.py) checks the door against aiohttp.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from debtgate.portal.head import Intercept, Parsed, read_head
from debtgate.portal.lookup import DaemonUnavailable
from debtgate.portal.nat import reached_by_dnat
from debtgate.portal.render import first_values
from debtgate.portal.security import client_address
from debtgate.portal.state import Portal
from debtgate.portal.wire import Redirects, page_wire, too_many
from debtgate.view import SubscriberView

log = logging.getLogger(__name__)

KEEPALIVE = 75.0
"""Seconds an idle keep-alive connection is kept (aiohttp's default)."""
MAX_HEAD = 8190
"""Largest request head the door reads; a longer one goes to aiohttp."""
_MEMO_SIZE = 512
"""Request heads whose reading is remembered per worker (a client repeats its head)."""


class Door:
    """What the connections of one listener share; ``answered`` counts the requests
    the door answered itself (the rest went to aiohttp)."""

    __slots__ = ("portal", "server", "conns", "memo", "redirects", "answered")

    def __init__(self, portal: Portal, server: Callable[[], asyncio.Protocol]) -> None:
        self.portal = portal
        self.server = server
        self.conns: set[FastProtocol] = set()
        self.memo: dict[bytes, Parsed | None] = {}
        self.redirects = Redirects(portal)
        self.answered = 0

    def read(self, head: bytes) -> Parsed | None:
        memo = self.memo
        try:
            return memo[head]
        except KeyError:
            found = read_head(head, self.portal.config.canonical_hosts)
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[head] = found
            return found


class FastProtocol(asyncio.Protocol):
    """One HTTP connection, answered here until a request needs aiohttp."""

    __slots__ = ("_door", "_transport", "_ip", "_buf", "_busy", "_task", "_paused",
                 "_closed", "last", "_peek", "_dnat")

    def __init__(self, door: Door) -> None:
        self._door = door
        self._transport: asyncio.Transport | None = None
        self._ip: str | None = None
        self._buf = b""
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._closed = False
        self.last = 0.0
        self._peek = getattr(door.portal.link, "peek", None)
        self._dnat: bool | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._door.conns.add(self)
        self.last = time.monotonic()
        peer = transport.get_extra_info("peername")
        cfg = self._door.portal.config
        if peer:
            ip = client_address(str(peer[0]), (), ())
            if ip is not None and any(ipaddress.ip_address(ip) in net
                                      for net in cfg.trusted_proxies):
                ip = None  # a proxy: aiohttp reads X-Forwarded-For
            self._ip = ip

    def data_received(self, data: bytes) -> None:
        self.last = time.monotonic()
        self._buf = self._buf + data if self._buf else data
        if not self._busy:
            self._process()

    def eof_received(self) -> bool | None:
        return None  # close after the pending answers (the transport closes itself)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        self._door.conns.discard(self)
        if self._task is not None:
            self._task.cancel()

    def pause_writing(self) -> None:
        if not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    def _process(self) -> None:
        buf = self._buf
        transport = self._transport
        assert transport is not None
        door = self._door
        portal = door.portal
        ip = self._ip
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD or b"\n\n" in buf:
                    break
                self._buf = buf
                return
            if ip is None or end > MAX_HEAD:
                break
            found = door.read(buf[:end + 4])
            if found is None:
                break
            if isinstance(found, Intercept) and not self._intercepts(found):
                break
            rest = buf[end + 4:]
            door.answered += 1
            if not portal.limiter.allow(ip):
                transport.write(too_many(portal.limiter.retry_after(ip)))
                buf = rest
                continue
            if isinstance(found, Intercept):
                # aiohttp's answer, then the close it asks for (later requests unread)
                if found.probe:
                    portal.probes.by_dnat += 1
                transport.write(door.redirects.wire(ip, found.url))
                self._buf = b""
                self.close()
                return
            query, accept = found
            hit, view = self._peek(ip) if self._peek is not None else (False, None)
            if not hit:
                self._buf = rest
                self._busy = True
                self._task = asyncio.get_running_loop().create_task(
                    self._slow(ip, query, accept))
                return
            try:
                page = portal.builder.page(ip, view, query, accept)
            except Exception:  # noqa: BLE001 - let aiohttp answer (and log) it
                log.exception("the door failed; handing the request to aiohttp")
                door.answered -= 1
                break
            transport.write(page_wire(portal, page, ip))
            buf = rest
        self._buf = b""
        if buf:
            self._handover(buf)

    def _intercepts(self, found: Intercept) -> bool:
        """True when the door gives this intercepted request its redirect: any
        ``GET`` that is not a probe; a probe only on a DNATed connection."""
        if not self._door.redirects.usable:
            return False
        if found.probe and self._dnat is None:
            self._dnat = reached_by_dnat(self._transport)
        return not found.probe or bool(self._dnat)

    async def _slow(self, ip: str, query: str, accept: str | None) -> None:
        portal = self._door.portal
        try:
            try:
                view: SubscriberView | None = await portal.link.view(ip)
            except DaemonUnavailable as exc:
                log.warning("page shown as unavailable: %s", exc)
                lang = portal.choose_language(first_values(query).get("lang"), None, accept)
                page = portal.builder.error("unavailable", 503, lang)
            else:
                page = portal.builder.page(ip, view, query, accept)
            if self._closed:
                return
            assert self._transport is not None
            self._transport.write(page_wire(portal, page, ip))
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("the door failed; closing the connection")
            self.close()
            return
        finally:
            self._task = None
            self._busy = False
        if self._buf and not self._closed:
            self._process()

    def _handover(self, buf: bytes) -> None:
        """Give the connection, with the unanswered bytes, to aiohttp."""
        transport = self._transport
        assert transport is not None
        self._door.conns.discard(self)
        inner = self._door.server()
        transport.set_protocol(inner)
        inner.connection_made(transport)
        if self._paused:
            self._paused = False
            inner.pause_writing()
        inner.data_received(buf)


class FastTCPSite(web.TCPSite):
    """A TCP site whose connections start at the door (:class:`FastProtocol`)."""

    def __init__(self, runner: web.AppRunner, portal: Portal, *args: Any, **kwargs: Any
                 ) -> None:
        super().__init__(runner, *args, **kwargs)
        self._portal = portal
        self.door: Door | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        found = self._runner.server
        assert found is not None
        door = self.door = Door(self._portal, found)

        class _Factory:  # looks like the aiohttp server to TCPSite.start
            def __call__(self) -> FastProtocol:
                return FastProtocol(door)

        real = self._runner._server  # noqa: SLF001 - swapped for the duration of start()
        self._runner._server = _Factory()  # type: ignore[assignment]  # noqa: SLF001
        try:
            await super().start()
        finally:
            self._runner._server = real  # noqa: SLF001
        self._sweep()

    def _sweep(self) -> None:
        if self.door is not None:
            deadline = time.monotonic() - KEEPALIVE
            for conn in [c for c in self.door.conns if c.last < deadline]:
                conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(KEEPALIVE / 5, self._sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.door is not None:
            for conn in list(self.door.conns):
                conn.close()
        await super().stop()
