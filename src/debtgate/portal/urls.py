"""The "original URL": validated before it is ever shown, linked or redirected to."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from typing import NamedTuple
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

MAX_URL = 2048
"""Longest original URL kept; longer ones are dropped, not truncated."""

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\\<>\"`]")
# Characters kept as they are when re-quoting the path and query.
_PATH_SAFE = "/:@!$&()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def _host(raw: str) -> str | None:
    """A normalised host name or IP literal, or None."""
    host = raw.lower().rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    if not host or len(host) > 253:
        return None
    if host.startswith("["):
        if not host.endswith("]"):
            return None
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1])}]"
        except ValueError:
            return None
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return None
    return host


def sanitize_url(raw: str | None) -> str | None:
    """Return a safe absolute http(s) URL equal in meaning to ``raw``, or None.

    Dropped: anything not http/https (``javascript:``, ``data:``...), protocol-relative
    or relative URLs, credentials, control characters, whitespace, backslashes,
    quotes and angle brackets, invalid hosts and ports, and anything longer than
    :data:`MAX_URL`. The fragment is removed; path and query are re-quoted.
    """
    if not raw or len(raw) > MAX_URL or _BAD_CHARS.search(raw):
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not raw.lower().startswith(parts.scheme + "://"):
        return None
    netloc = parts.netloc
    if "@" in netloc:
        return None
    host_part = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
    host = _host(host_part)
    if host is None:
        return None
    if port is not None and not 0 < port < 65536:
        return None
    default = 80 if parts.scheme == "http" else 443
    if port is not None and port != default:
        host = f"{host}:{port}"
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    query = quote(parts.query, safe=_QUERY_SAFE)
    url = urlunsplit((parts.scheme, host, path, query, ""))
    return url if len(url) <= MAX_URL else None


def original_url(host: str | None, path_qs: str, *, secure: bool = False) -> str | None:
    """Rebuild the URL an intercepted request was for, sanitised (None if unusable)."""
    if not host or not path_qs.startswith("/") or path_qs.startswith("//"):
        return None
    scheme = "https" if secure else "http"
    return sanitize_url(f"{scheme}://{host}{path_qs}")


def host_only(host: str | None) -> str:
    """The host name of a Host header value: lower case, without port or trailing dot."""
    value = (host or "").strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]" if "]" in value else value
    return value.rsplit(":", 1)[0].rstrip(".") if value.count(":") == 1 else value.rstrip(".")


def points_to(url: str, hosts: Collection[str]) -> bool:
    """True when ``url``'s host is one of ``hosts`` (as :func:`host_only` gives them)."""
    return host_only(urlsplit(url).netloc) in hosts


class Original(NamedTuple):
    """An original URL the interception produced, with its signature (``?url=&sig=``)."""

    url: str
    sig: str


def portal_redirect(public_url: str, original: Original | None, lang: str | None = None) -> str:
    """The portal's canonical URL carrying the (sanitised, signed) original URL."""
    params: dict[str, str] = {}
    if original:
        params["url"] = original.url
        params["sig"] = original.sig
    if lang:
        params["lang"] = lang
    if not params:
        return public_url
    sep = "&" if "?" in public_url else "?"
    return public_url + sep + urlencode(params, quote_via=quote)
