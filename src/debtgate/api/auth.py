"""Middlewares of the management API: JSON errors, bearer auth on TCP, request authors.

Requests arriving on the Unix socket (mode 0600, root only) need no token;
anything else must carry ``Authorization: Bearer <token>``, compared in
constant time. The token is never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from debtgate.errors import DebtgateError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN: web.AppKey[str | None] = web.AppKey("token", str)
AUTHOR_HEADER = "X-Debtgate-Author"
_PEERCRED = struct.Struct("3i")


def error(message: str, status: int, **headers: str) -> web.Response:
    return web.Response(text=json.dumps({"error": message}), status=status,
                        content_type="application/json", headers=headers or None)


def _socket(request: web.Request) -> Any:
    transport = request.transport
    return transport.get_extra_info("socket") if transport is not None else None


def on_unix_socket(request: web.Request) -> bool:
    """True when the request came in on a Unix socket (the root-only one)."""
    sock = _socket(request)
    return getattr(sock, "family", None) == socket.AF_UNIX


def _peer_uid(request: web.Request) -> int | None:
    sock = _socket(request)
    try:
        _pid, uid, _gid = _PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    except (AttributeError, OSError, struct.error):
        return None
    return int(uid)


def _clean(claimed: str) -> str:
    text = "".join(c for c in claimed if c.isprintable() and c not in "\"'\\")
    return text.strip()[:64]


def author_of(request: web.Request) -> str:
    """Who made the request, for the audit trail: the claimed user plus what we know."""
    claimed = _clean(request.headers.get(AUTHOR_HEADER, ""))
    if on_unix_socket(request):
        uid = _peer_uid(request)
        try:
            user = pwd.getpwuid(uid).pw_name if uid is not None else "?"
        except KeyError:
            user = f"uid={uid}"
        where = f"unix:{user}"
    else:
        where = f"tcp:{request.remote or '?'}"
    return f"{claimed} ({where})" if claimed and claimed != where else where


def token_ok(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (constant-time compare)."""
    scheme, _, given = header.partition(" ")
    given_b = given.strip().encode("utf-8", "replace")
    same = hmac.compare_digest(given_b, token.encode("utf-8"))
    return scheme.lower() == "bearer" and same


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as ``{"error": ...}``; unexpected exceptions are logged, not leaked."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.reason if exc.status != 413 else "request body too large"
        return error(text, exc.status, **({"Allow": exc.headers["Allow"]}
                                          if "Allow" in exc.headers else {}))
    except DebtgateError as exc:  # the outside world failed (nft, billing): retryable
        log.error("management API: %s %s failed: %s", request.method, request.path, exc)
        return error(f"temporarily unable: {exc}", 503)
    except Exception:
        log.exception("management API: %s %s failed", request.method, request.path)
        return error("internal error (see the daemon's log)", 500)


@web.middleware
async def bearer_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unix socket: pass. Anything else: a matching bearer token or 401."""
    if on_unix_socket(request):
        return await handler(request)
    token = request.app[TOKEN]
    header = request.headers.get("Authorization", "")
    if token and header and token_ok(header, token):
        return await handler(request)
    log.warning("management API: refused %s %s from %s (%s token)", request.method,
                request.path, request.remote, "wrong" if header else "no")
    return error("a valid bearer token is required", 401, **{"WWW-Authenticate": "Bearer"})
