"""The portal's aiohttp application: middlewares, security headers and routes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from debtgate.config.portal import PortalConfig
from debtgate.portal import handlers, selfservice
from debtgate.portal.intercept import handle_intercepted
from debtgate.portal.lookup import DaemonLink
from debtgate.portal.security import client_address, load_secret
from debtgate.portal.state import ADDRESS, PORTAL, Portal
from debtgate.portal.urls import host_only

log = logging.getLogger(__name__)

MAX_BODY = 4096
"""Largest request body accepted (the acknowledgement form is ~200 bytes)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


NON_HTML_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
"""The CSP of anything that is not a rendered page (rendered pages bring their own)."""


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.pop("Server", None)
    headers.setdefault("Content-Security-Policy", NON_HTML_CSP)
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def _address_and_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking, the per-address rate limit, and interception by Host."""
    portal = request.app[PORTAL]
    address = client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", ()) if portal.config.trusted_proxies else (),
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
    host = request.headers.get("Host")
    if host is not None and host_only(host) not in portal.config.canonical_hosts:
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
        middlewares=[_address_and_limits],
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
