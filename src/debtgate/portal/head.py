"""What the door reads of one request head (httptools, i.e. llhttp in strict mode).

:func:`read_head` says which answer of the door a complete request head asks for, or
None: the request is for aiohttp. A pure function of the head bytes and the
configuration (so its result can be remembered). It is deliberately narrow: anything
llhttp refuses, anything that is not ``GET`` in HTTP/1.1 with no body, a header name
or value outside plain text, an oversized header, any duplicated header (aiohttp
refuses some: ``Host``, ``User-Agent``...), any of :data:`DELEGATE`, a non-ASCII ``Host``
or ``Accept-Language``, or a target the door is not sure it reads as aiohttp does
(percent escapes or ``+`` where they matter, dot or empty segments, a fragment) is
None.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import httptools

from debtgate.portal.probes import match_probe
from debtgate.portal.urls import host_only, original_url, points_to

MAX_FIELD = 4096
"""Longest header (name and value) the door reads (aiohttp's ``max_field_size``)."""
DELEGATE = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade",
                      b"te", b"trailer", b"x-forwarded-for", b"forwarded"})
"""Headers whose presence sends the request to aiohttp."""

_TOKEN = (b"!#$%&'*+.^_`|~0123456789-"
          b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_VALUE = b"\t" + bytes(range(0x20, 0x7f)) + bytes(range(0x80, 0x100))
_PAGE = re.compile(rb"/(?:\?[\x21-\x22\x24-\x7e]*)?")
"""``/`` with a query of visible ASCII but ``#`` (the query goes to the page raw)."""
_FOREIGN = re.compile(rb"/[A-Za-z0-9_.~/-]*(?:\?[A-Za-z0-9_.~!$&'()*,;=:@/?-]*)?")
"""A target on a foreign Host read exactly as aiohttp reads it: no escapes, no ``+``."""


class PageAsk(NamedTuple):
    """``GET /[?query]`` on the portal's own Host: the stub page."""

    query: str
    accept: str | None


class Intercept(NamedTuple):
    """``GET`` on a foreign Host: the redirect to the portal. ``url`` is the sanitised
    original URL (None when unusable); ``probe`` is True for an OS detection probe."""

    url: str | None
    probe: bool


Parsed = PageAsk | Intercept


class _Head:
    """The httptools callbacks: the target and the headers of exactly one message."""

    __slots__ = ("url", "headers", "begun", "done")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.begun = 0
        self.done = 0

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        self.done += 1


def read_head(head: bytes, own_hosts: frozenset[str]) -> Parsed | None:
    """The door's reading of ``head`` (a request head ending in CRLF CRLF), or None."""
    got = _Head()
    parser = httptools.HttpRequestParser(got)
    try:
        parser.feed_data(head)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return None
    if got.begun != 1 or got.done != 1 or parser.get_method() != b"GET" \
            or parser.get_http_version() != "1.1" or parser.should_upgrade():
        return None
    host = accept = connection = None
    seen: set[bytes] = set()
    for name, raw in got.headers:
        if len(name) + len(raw) > MAX_FIELD or not name or name.translate(None, _TOKEN) \
                or raw.translate(None, _VALUE):
            return None
        value = raw.strip(b" \t")
        name = name.lower()
        if name in seen or name in DELEGATE:
            return None  # aiohttp refuses some duplicates (User-Agent...): it decides
        seen.add(name)
        if name == b"host":
            host = value
        elif name == b"accept-language":
            accept = value
        elif name == b"connection":
            connection = value.lower()
    if host is None or not host.isascii() or (accept is not None and not accept.isascii()):
        return None
    target = got.url
    hostname = host.decode("ascii")
    if host_only(hostname) in own_hosts:
        if connection not in (None, b"keep-alive") or not _PAGE.fullmatch(target):
            return None
        query = target.partition(b"?")[2].decode("ascii")
        return PageAsk(query, accept.decode("ascii") if accept is not None else None)
    return _intercept(target, hostname, connection, own_hosts)


def _intercept(target: bytes, host: str, connection: bytes | None,
               own_hosts: frozenset[str]) -> Intercept | None:
    if connection not in (None, b"keep-alive", b"close") or not _FOREIGN.fullmatch(target):
        return None
    raw_path, _, raw_query = target.partition(b"?")
    if b"//" in raw_path or b"/." in raw_path:
        return None  # aiohttp normalises these: let it decide
    path = raw_path.decode("ascii")
    if match_probe(host, path) is not None:
        return Intercept(None, True)
    path_qs = path + "?" + raw_query.decode("ascii") if raw_query else path
    url = original_url(host, path_qs)
    return Intercept(url if url and not points_to(url, own_hosts) else None, False)
