"""Building pages once: the rendered bytes of a page, cached per asking address.

A page depends on the view of the asking address, the language (``?lang=``, the
subscriber's, ``Accept-Language``), the original URL and the self-service result
(``?url=``, ``?done=``). The rendered bytes are kept for ``cache_ttl`` seconds under
(address, query string, Accept-Language) and reused only while the daemon's view is
the same; the address is part of the key, so no address is ever shown a page built
for another. Per-request values (the CSRF token, the self-service idempotency key)
are placeholders filled in for every response.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from debtgate.config.portal import PortalConfig
from debtgate.model import State
from debtgate.portal.offers import context
from debtgate.portal.pages import Pages, Rendered
from debtgate.portal.security import Csrf, UrlSigner
from debtgate.portal.urls import Original, points_to, sanitize_url
from debtgate.view import SubscriberView


class PortalParts(Protocol):
    """What the page builder reads of the portal's state (:class:`.state.Portal`, which
    holds the builder: the builder sees only these parts)."""

    config: PortalConfig
    pages: Pages
    csrf: Csrf
    signer: UrlSigner

    def choose_language(self, explicit: str | None, subscriber: str | None,
                        accept: str | None) -> str: ...

PAGE_CACHE_SIZE = 2048
"""Rendered pages kept per worker (≈ 7 KB each)."""

_REASONS = {200: "OK", 403: "Forbidden", 404: "Not Found", 503: "Service Unavailable",
            511: "Network Authentication Required"}

SECURITY_HEADERS = (
    "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"
)


@dataclass(slots=True)
class Page:
    """A rendered page: status, body (maybe with placeholders), language and CSP."""

    status: int
    body: bytes
    lang: str
    csp: str
    dynamic: bool
    view: SubscriberView | None = None
    expires: float = 0.0
    head: bytes = b""
    """The HTTP/1.1 status line and headers without ``Date`` (static pages only)."""
    wire: bytes = b""
    wire_date: bytes = b""
    """The whole response (static pages) as sent in the second ``wire_date``."""

    def wire_head(self, length: int) -> bytes:
        return (
            f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'OK')}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {length}\r\nContent-Language: {self.lang}\r\n"
            f"Content-Security-Policy: {self.csp}\r\n{SECURITY_HEADERS}"
        ).encode("ascii")


def first_values(query_string: str) -> dict[str, str]:
    """The first value of every parameter of a query string (as ``request.query.get``)."""
    out: dict[str, str] = {}
    if query_string:
        for key, value in parse_qsl(query_string, keep_blank_values=True):
            out.setdefault(key, value)
    return out


def original(portal: PortalParts, ip: str, raw: str | None, sig: str | None) -> Original | None:
    """The original URL ``raw`` if the interception produced it for ``ip`` (its
    signature ``sig`` is valid) and it is still a sane URL not pointing at the portal;
    else None: a URL from anywhere else is never shown, linked or redirected to."""
    if not raw or not sig or not portal.signer.verify(ip, raw, sig):
        return None
    url = sanitize_url(raw)
    if url is None or url != raw or points_to(url, portal.config.canonical_hosts):
        return None
    return Original(url, sig)


class PageBuilder:
    """Renders and caches the portal's pages of one worker."""

    def __init__(self, portal: PortalParts, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._portal = portal
        self._ttl = ttl
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str, str], Page] = OrderedDict()
        # Placeholders: random per process, so no request can ever contain them.
        self.csrf_slot = "csrf" + secrets.token_hex(12)
        self.key_slot = "key" + secrets.token_hex(12)
        self._csrf_b = self.csrf_slot.encode()
        self._key_b = self.key_slot.encode()

    def _page(self, rendered: Rendered, status: int, lang: str,
              view: SubscriberView | None = None) -> Page:
        html = rendered.html
        dynamic = self.csrf_slot in html or self.key_slot in html
        body = html.encode()
        page = Page(status, body, lang, rendered.csp, dynamic, view)
        if not dynamic:
            page.head = page.wire_head(len(body))
        return page

    def body(self, page: Page, ip: str) -> bytes:
        """The body to send to ``ip``: placeholders replaced by fresh values."""
        if not page.dynamic:
            return page.body
        body = page.body
        if self._csrf_b in body:
            body = body.replace(self._csrf_b, self._portal.csrf.issue(ip).encode())
        if self._key_b in body:
            body = body.replace(self._key_b, secrets.token_urlsafe(18).encode())
        return body

    def error(self, kind: str, status: int, lang: str) -> Page:
        """The error page ``kind`` (unavailable, csrf, notfound, signin)."""
        pages = self._portal.pages
        ctx = pages.common(lang, None)
        return self._page(pages.render("error", lang, kind=kind, **ctx), status, lang)

    def page(self, ip: str, view: SubscriberView | None, query_string: str,
             accept: str | None) -> Page:
        """The page of ``ip`` whose daemon view is ``view`` (cached while it holds)."""
        key = (ip, query_string, accept or "")
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None:
            if cached.expires > now and (cached.view is view or cached.view == view):
                self._cache.move_to_end(key)
                return cached
            del self._cache[key]
        page = self._render(ip, view, query_string, accept)
        if self._ttl > 0:
            page.expires = now + self._ttl
            self._cache[key] = page
            if len(self._cache) > PAGE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return page

    def _render(self, ip: str, view: SubscriberView | None, query_string: str,
                accept: str | None) -> Page:
        portal = self._portal
        query = first_values(query_string)
        lang = portal.choose_language(query.get("lang"), view.language if view else None,
                                      accept)
        ctx = portal.pages.common(lang, original(portal, ip, query.get("url"), query.get("sig")))
        if view is None:
            return self._page(portal.pages.render("unknown", lang, **ctx), 200, lang, view)
        ctx.update(portal.pages.subscriber(view, lang))
        ctx.update(context(view, lang, query.get("done"), self.key_slot, self.csrf_slot))
        if view.state is State.WARN:
            ctx["csrf"] = self.csrf_slot
        rendered = portal.pages.render(view.state.value, lang, **ctx)
        return self._page(rendered, 200, lang, view)

    def __len__(self) -> int:
        return len(self._cache)
