"""The fast path of the HTTP listener: the stub page without the framework.

Almost every request a portal sees is ``GET /`` (or ``GET /?url=…``) from a
restricted subscriber's browser on a keep-alive connection. :class:`FastProtocol`
answers exactly those itself, from the page cache, and hands the connection to
aiohttp (the same application, same middleware) at the first request it does not
recognise, with everything it has not answered yet. It is deliberately strict: the
request line must be ``GET /[?query] HTTP/1.1``, header names must be tokens,
values plain text, the Host one of the portal's own, and any of ``Content-Length``,
``Transfer-Encoding``, ``Expect``, ``Upgrade``, a ``Connection`` other than
``keep-alive``, an oversized line or a duplicated Host/Accept-Language sends the
request (and the connection) to aiohttp. Nothing is lost by handing over: aiohttp
then parses the request from its first byte.

What the fast path does is what the application does for that request: the asking
address is the TCP peer (with trusted proxies configured, a connection from a
trusted proxy goes to aiohttp, which reads ``X-Forwarded-For``), the per-address
rate limit takes a token (429 when empty), the daemon's view comes from the link's
cache or, on a miss, from the daemon (the connection waits, later requests queue),
and the response carries the same security headers, the page's hash-based CSP and
no ``Server`` banner. Idle connections are closed after ``KEEPALIVE`` seconds, as
aiohttp does.

One more request is answered here: an OS detection probe (``GET`` of a probe URL on
a foreign Host, see :mod:`.probes`) on a connection the gateway's DNAT brought here
(:mod:`.nat`). Only captive addresses are DNATed, so its answer is the sign-in
redirect, without a question to the daemon, byte for byte what the application sends
for it (302 to ``public_url``, ``Connection: close``); then the connection is closed.
A probe on a connection that was not DNATed, a ``HEAD``, or a target the parser is not
sure it reads as aiohttp does (percent escapes, dot segments) goes to aiohttp.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

from aiohttp import web

from .lookup import DaemonUnavailable, SubscriberView
from .nat import reached_by_dnat
from .probes import match_probe
from .render import Page, first_values
from .security import client_address
from .state import Portal
from .urls import host_only

log = logging.getLogger(__name__)

KEEPALIVE = 75.0
"""Seconds an idle keep-alive connection is kept (aiohttp's default)."""
MAX_HEAD = 8190
"""Largest request head the fast path looks at; a longer one goes to aiohttp."""
MAX_FIELD = 4096

_TOKEN = (b"!#$%&'*+.^_`|~0123456789-"
          b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
"""The bytes of a header name (``name.translate(None, _TOKEN)`` leaves any other)."""
_VALUE = b"\t" + bytes(range(0x20, 0x7f)) + bytes(range(0x80, 0x100))
"""The bytes of a header value (text, TAB; no other control)."""
_TARGET = re.compile(rb"/(?:\?[\x21-\x7e]*)?")
_PROBE_TARGET = re.compile(rb"/[A-Za-z0-9_.~/-]*(?:\?[A-Za-z0-9_.~!$&'()*+,;=:@/?%-]*)?")
"""A probe's target the fast path reads as aiohttp does (no escapes in the path, plain
query characters; dot segments and empty segments are refused separately)."""
_DELEGATE = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade",
                       b"te", b"trailer", b"x-forwarded-for", b"forwarded"})
_MEMO_SIZE = 512
"""Request heads whose parse is remembered per worker (a client repeats its head)."""

_date_cache: list[Any] = [0, b""]

Parsed = tuple[str, str | None]
"""What a remembered head parse says: (query, Accept-Language) of a page request, or
:data:`SIGN_IN` for an OS probe on a foreign Host."""
SIGN_IN: Parsed = ("\x00sign-in", None)
"""The parse of an intercepted OS probe (compared by identity)."""


def http_date() -> bytes:
    """The ``Date`` header value, computed once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode("ascii")
    return _date_cache[1]  # type: ignore[no-any-return]


class _Handover(Exception):  # noqa: N818 - a control-flow signal, not an error
    """This request is for aiohttp."""


class SignInAnswer:
    """The sign-in redirect of a DNATed probe as bytes on the wire, rebuilt once a second
    (the ``Date``); not usable when ``public_url`` is not plain visible ASCII (aiohttp
    then answers such probes, as before)."""

    __slots__ = ("_head", "_date", "_wire")

    def __init__(self, public_url: str) -> None:
        ok = public_url.isascii() and all(0x21 <= ord(c) <= 0x7e for c in public_url)
        self._head: bytes | None = (
            b"HTTP/1.1 302 Found\r\nLocation: " + public_url.encode("ascii")
            + b"\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: 0\r\n"
            b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; "
            b"base-uri 'none'\r\nX-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff"
            b"\r\nReferrer-Policy: no-referrer\r\nDate: ") if ok else None
        self._date = b""
        self._wire = b""

    @property
    def usable(self) -> bool:
        return self._head is not None

    def wire(self) -> bytes:
        date = http_date()
        if date is not self._date:
            assert self._head is not None
            self._date = date
            self._wire = self._head + date + b"\r\n\r\n"
        return self._wire


class FastProtocol(asyncio.Protocol):
    """One HTTP connection, answered here until a request needs aiohttp."""

    __slots__ = ("_factory", "_portal", "_conns", "_transport", "_ip", "_buf", "_busy",
                 "_task", "_paused", "_closed", "last", "_peek", "_memo", "_signin",
                 "_dnat")

    def __init__(self, factory: Callable[[], asyncio.Protocol], portal: Portal,
                 conns: set[FastProtocol],
                 memo: dict[bytes, Parsed] | None = None,
                 signin: SignInAnswer | None = None) -> None:
        self._factory = factory
        self._portal = portal
        self._conns = conns
        self._transport: asyncio.Transport | None = None
        self._ip: str | None = None
        self._buf = b""
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._closed = False
        self.last = 0.0
        self._peek = getattr(portal.link, "peek", None)
        self._memo: dict[bytes, Parsed] = {} if memo is None else memo
        self._signin = signin if signin is not None else SignInAnswer(portal.config.public_url)
        self._dnat: bool | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._conns.add(self)
        self.last = time.monotonic()
        peer = transport.get_extra_info("peername")
        cfg = self._portal.config
        if peer:
            ip = client_address(str(peer[0]), (), ())
            if ip is not None and cfg.trusted_proxies and _trusted(ip, cfg.trusted_proxies):
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
        self._conns.discard(self)
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

    # the work

    def close(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.close()

    def _process(self) -> None:
        buf = self._buf
        transport = self._transport
        assert transport is not None
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    break
                self._buf = buf
                return
            try:
                ip, found = self._parse(buf, end)
                if found is SIGN_IN and not self._reached_by_dnat():
                    raise _Handover
            except _Handover:
                break
            rest = buf[end + 4:]
            portal = self._portal
            if not portal.limiter.allow(ip):
                transport.write(_too_many(portal.limiter.retry_after(ip)))
                buf = rest
                continue
            if found is SIGN_IN:
                # an OS probe from an address the gateway treats as captive: the
                # sign-in answer, no question; then close, as the application does
                portal.probes.by_dnat += 1
                transport.write(self._signin.wire())
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
                log.exception("fast path failed; handing the request to aiohttp")
                break
            transport.write(self._wire(page, ip))
            buf = rest
        self._buf = b""
        if buf:
            self._handover(buf)

    def _parse(self, buf: bytes, end: int) -> tuple[str, Parsed]:
        if self._ip is None or end > MAX_HEAD:
            raise _Handover
        head = buf[:end]
        found = self._memo.get(head)
        if found is None:
            found = self._parse_head(head)  # raises _Handover
            memo = self._memo
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[head] = found
        return self._ip, found

    def _reached_by_dnat(self) -> bool:
        if self._dnat is None:
            self._dnat = self._signin.usable and reached_by_dnat(self._transport)
        return self._dnat

    def _parse_head(self, head: bytes) -> Parsed:
        """(query, Accept-Language) of a page request the fast path answers,
        :data:`SIGN_IN` for an OS probe on a foreign Host (answered only on a DNATed
        connection), else _Handover.

        A pure function of the head bytes (and the configuration): remembered."""
        lines = head.split(b"\r\n")
        line = lines[0]
        if not (line.startswith(b"GET /") and line.endswith(b" HTTP/1.1")):
            raise _Handover
        target = line[4:-9]
        host = accept = connection = None
        for raw in lines[1:]:
            name, colon, value = raw.partition(b":")
            if not colon or not name or len(raw) > MAX_FIELD or name.translate(None, _TOKEN) \
                    or value.translate(None, _VALUE):
                raise _Handover
            value = value.strip(b" \t")
            name = name.lower()
            if name == b"host":
                if host is not None:
                    raise _Handover
                host = value
            elif name == b"accept-language":
                if accept is not None:
                    raise _Handover
                accept = value
            elif name == b"connection":
                if connection is not None:
                    raise _Handover
                connection = value.lower()
            elif name in _DELEGATE:
                raise _Handover
        if host is None:
            raise _Handover
        hostname = host.decode("latin-1")
        if host_only(hostname) not in self._portal.config.canonical_hosts:
            return self._probe_head(target, hostname, connection)
        if connection not in (None, b"keep-alive") or not _TARGET.fullmatch(target):
            raise _Handover
        _, _, query = target.partition(b"?")
        return (query.decode("latin-1"),
                accept.decode("latin-1") if accept is not None else None)

    @staticmethod
    def _probe_head(target: bytes, host: str, connection: bytes | None) -> Parsed:
        """:data:`SIGN_IN` when an intercepted GET is an OS probe, else _Handover."""
        if connection not in (None, b"keep-alive", b"close") \
                or not _PROBE_TARGET.fullmatch(target):
            raise _Handover
        path = target.partition(b"?")[0]
        if b"//" in path or b"/." in path:
            raise _Handover  # aiohttp normalises these: let it decide
        if match_probe(host, path.decode("ascii")) is None:
            raise _Handover
        return SIGN_IN

    def _wire(self, page: Page, ip: str) -> bytes:
        date = http_date()
        if page.dynamic:
            body = self._portal.builder.body(page, ip)
            head = page.wire_head(len(body))
        else:
            if page.wire_date is date:  # the same second: the same bytes
                return page.wire
            body, head = page.body, page.head
        wire = b"".join((head, b"Date: ", date, b"\r\n\r\n", body))
        if not page.dynamic:
            page.wire, page.wire_date = wire, date
        return wire

    async def _slow(self, ip: str, query: str, accept: str | None) -> None:
        portal = self._portal
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
            self._transport.write(self._wire(page, ip))
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("fast path failed; closing the connection")
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
        self._conns.discard(self)
        inner = self._factory()
        transport.set_protocol(inner)
        inner.connection_made(transport)
        if self._paused:
            self._paused = False
            inner.pause_writing()
        inner.data_received(buf)


def _trusted(ip: str, nets: Any) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr in net for net in nets)


def _too_many(retry: int) -> bytes:
    body = b"Too Many Requests"
    return (
        f"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: {retry}\r\n"
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; base-uri 'none'\r\n"
        "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
        "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\nDate: "
    ).encode() + http_date() + b"\r\n\r\n" + body


class FastTCPSite(web.TCPSite):
    """A TCP site whose connections start on :class:`FastProtocol`."""

    def __init__(self, runner: web.AppRunner, portal: Portal, *args: Any, **kwargs: Any
                 ) -> None:
        super().__init__(runner, *args, **kwargs)
        self._portal = portal
        self._conns: set[FastProtocol] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        found = self._runner.server
        assert found is not None
        server: Callable[[], asyncio.Protocol] = found
        portal, conns = self._portal, self._conns
        memo: dict[bytes, Parsed] = {}
        signin = SignInAnswer(portal.config.public_url)

        class _Factory:  # looks like the aiohttp server to TCPSite.start
            def __call__(self) -> FastProtocol:
                return FastProtocol(server, portal, conns, memo, signin)

        real = self._runner._server  # noqa: SLF001 - swapped for the duration of start()
        self._runner._server = _Factory()  # type: ignore[assignment]  # noqa: SLF001
        try:
            await super().start()
        finally:
            self._runner._server = real  # noqa: SLF001
        self._sweep()

    def _sweep(self) -> None:
        deadline = time.monotonic() - KEEPALIVE
        for conn in [c for c in self._conns if c.last < deadline]:
            conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(KEEPALIVE / 5, self._sweep)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._conns):
            conn.close()
        await super().stop()
