"""The portal's aiohttp application: middlewares, security headers and routes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import handlers, selfservice
from .config import PortalConfig
from .intercept import handle_intercepted
from .lookup import DaemonLink
from .security import client_address, load_secret, nonce
from .state import ADDRESS, NONCE, PORTAL, Portal
from .urls import host_only

log = logging.getLogger(__name__)

MAX_BODY = 4096
"""Largest request body accepted (the acknowledgement form is ~200 bytes)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def content_security_policy(csp_nonce: str | None) -> str:
    """The CSP of HTML pages (with a nonce) or of anything else (without)."""
    if csp_nonce is None:
        return "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    return (
        f"default-src 'none'; style-src 'nonce-{csp_nonce}'; script-src 'nonce-{csp_nonce}'; "
        "img-src data:; connect-src 'self'; form-action 'self' http: https:; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.pop("Server", None)
    html = (response.content_type or "").startswith("text/html")
    headers["Content-Security-Policy"] = content_security_policy(
        request.get(NONCE) if html else None
    )
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def _address_and_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    portal = request.app[PORTAL]
    request[NONCE] = nonce()
    address = client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        portal.config.trusted_proxies,
    )
    if address is None:
        return web.Response(status=400, text="Bad Request")
    request[ADDRESS] = address
    if not portal.limiter.allow(address):
        retry = portal.limiter.retry_after(address)
        return web.Response(
            status=429, text="Too Many Requests", headers={"Retry-After": str(retry)}
        )
    return await handler(request)


@web.middleware
async def _intercept(request: web.Request, handler: Handler) -> web.StreamResponse:
    host = request.headers.get("Host")
    if host is not None and host_only(host) not in request.app[PORTAL].config.canonical_hosts:
        return await handle_intercepted(request)
    return await handler(request)


def make_app(
    config: PortalConfig,
    link: DaemonLink,
    *,
    secret: bytes | None = None,
    clock: Callable[[], float] | None = None,
) -> web.Application:
    """The portal application answering for ``config`` with the daemon behind ``link``.

    ``secret`` is the CSRF key (read from ``csrf_secret_file`` or generated when
    None); ``clock`` replaces the rate limiter's monotonic clock in tests.
    """
    if secret is None:
        secret = load_secret(config.csrf_secret_file)
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[_address_and_limits, _intercept],
        handler_args={"max_field_size": 4096, "max_line_size": 8190},
    )
    app[PORTAL] = Portal.build(config, link, secret, clock)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", handlers.page)
    app.router.add_post("/ack", handlers.acknowledge)
    app.router.add_post("/promise", selfservice.promise)
    app.router.add_post("/resume", selfservice.resume)
    app.router.add_get("/api/state", handlers.api_state)
    app.router.add_get("/api/captive", handlers.api_captive)
    app.router.add_route("*", "/{tail:.*}", handlers.not_found)
    return app
