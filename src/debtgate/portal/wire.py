"""The door's answers as bytes on the wire, byte for byte what the application sends.

Every answer here is the one the aiohttp application (:mod:`.app`, its middleware and
:mod:`.intercept`) gives to the same request: the same status, the same headers (the
security headers, a CSP, ``Cache-Control: no-store``, no ``Server`` banner) and body.
``Date`` is computed once a second and the bytes built from it are reused within it.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

from debtgate.portal.render import Page
from debtgate.portal.state import Portal
from debtgate.portal.urls import Original, portal_redirect

_date_cache: list[Any] = [0, b""]

_NON_HTML = (b"Content-Security-Policy: default-src 'none'; frame-ancestors 'none'; "
             b"base-uri 'none'\r\nX-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff"
             b"\r\nReferrer-Policy: no-referrer\r\n")
_REDIRECT_TAIL = (b"\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: 0\r\n"
                  + _NON_HTML + b"Date: ")
_CACHE = 4096
"""Intercept answers kept per second (per address and original URL)."""


def http_date() -> bytes:
    """The ``Date`` header value, computed once a second."""
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[0] = now
        _date_cache[1] = formatdate(now, usegmt=True).encode("ascii")
    return _date_cache[1]  # type: ignore[no-any-return]


def _header_safe(value: str) -> bool:
    return value.isascii() and all(0x21 <= ord(c) <= 0x7e for c in value)


class Redirects:
    """The intercept's ``302`` to the portal (``Connection: close``): without ``url``
    for an OS probe (the sign-in answer), with the signed original URL for any other
    intercepted ``GET``. Kept per second: the signature's time stamp and ``Date`` are."""

    __slots__ = ("_portal", "usable", "_date", "_answers")

    def __init__(self, portal: Portal) -> None:
        self._portal = portal
        self.usable = _header_safe(portal.config.public_url)
        """False when ``public_url`` is not plain visible ASCII: aiohttp answers."""
        self._date = b""
        self._answers: dict[tuple[str, str | None], bytes] = {}

    def wire(self, ip: str, url: str | None) -> bytes:
        """The redirect of ``ip`` carrying the (sanitised) original ``url``, if any."""
        date = http_date()
        if date is not self._date:
            self._date = date
            self._answers = {}
        key = (ip, url)
        answer = self._answers.get(key)
        if answer is None:
            portal = self._portal
            original = Original(url, portal.signer.sign(ip, url)) if url else None
            location = portal_redirect(portal.config.public_url, original)
            answer = (b"HTTP/1.1 302 Found\r\nLocation: " + location.encode("ascii")
                      + _REDIRECT_TAIL + date + b"\r\n\r\n")
            if len(self._answers) >= _CACHE:
                self._answers.clear()
            self._answers[key] = answer
        return answer


def too_many(retry: int) -> bytes:
    """The rate limiter's ``429``."""
    body = b"Too Many Requests"
    return (
        f"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: {retry}\r\n"
    ).encode() + _NON_HTML + b"Cache-Control: no-store\r\nDate: " + http_date() \
        + b"\r\n\r\n" + body


def page_wire(portal: Portal, page: Page, ip: str) -> bytes:
    """A page of the page cache for ``ip``: the whole response of a static page is kept
    per second; a dynamic one gets its per-request values filled in."""
    date = http_date()
    if page.dynamic:
        body = portal.builder.body(page, ip)
        head = page.wire_head(len(body))
    else:
        if page.wire_date is date:  # the same second: the same bytes
            return page.wire
        body, head = page.body, page.head
    wire = b"".join((head, b"Date: ", date, b"\r\n\r\n", body))
    if not page.dynamic:
        page.wire, page.wire_date = wire, date
    return wire
