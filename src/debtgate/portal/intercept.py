"""Requests that reached the portal by DNAT: redirects, 511 and OS probe answers."""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

from debtgate.portal.lookup import DaemonUnavailable
from debtgate.portal.nat import reached_by_dnat
from debtgate.portal.probes import Probe, match_probe
from debtgate.portal.security import client_address
from debtgate.portal.state import ADDRESS, PORTAL, Portal
from debtgate.portal.urls import Original, original_url, points_to, portal_redirect

log = logging.getLogger(__name__)


def _closing(resp: web.StreamResponse) -> web.StreamResponse:
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Connection"] = "close"
    resp.force_close()
    return resp


def redirect_to_portal(portal: Portal, request: web.Request, with_url: bool) -> web.Response:
    """302 to the portal's canonical URL carrying the original URL (sanitised and
    signed for the asking address: the portal links and redirects only to such URLs)."""
    original = None
    if with_url:
        url = original_url(request.headers.get("Host"), request.path_qs,
                           secure=request.secure)
        if url and not points_to(url, portal.config.canonical_hosts):
            original = Original(url, portal.signer.sign(request[ADDRESS], url))
    location = portal_redirect(portal.config.public_url, original)
    resp = web.Response(status=302, headers={"Location": location})
    _closing(resp)
    return resp


def network_auth_required(portal: Portal, request: web.Request) -> web.Response:
    """511 with a small page linking the portal (for non-GET intercepted requests)."""
    page = portal.builder.error("signin", 511, portal.language(request))
    resp = web.Response(status=511, body=page.body, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": page.lang,
                                 "Content-Security-Policy": page.csp})
    _closing(resp)
    return resp


def probe_success(probe: Probe) -> web.Response:
    """What the OS expects when it is online."""
    resp = web.Response(status=probe.status, body=probe.body or None,
                        content_type=probe.content_type if probe.body else None)
    _closing(resp)
    return resp


def dnat_brought(portal: Portal, request: web.Request) -> bool:
    """True when the gateway's DNAT brought this request's connection here, from the
    asking address itself (a trusted proxy's connection says nothing of its clients)."""
    trusted = portal.config.trusted_proxies
    if trusted:
        peer = client_address(request.remote, (), ())
        if peer is None or any(ipaddress.ip_address(peer) in net for net in trusted):
            return False
    return reached_by_dnat(request.transport)


async def handle_intercepted(request: web.Request) -> web.StreamResponse:
    """Answer a request whose Host is not the portal's."""
    portal = request.app[PORTAL]
    if request.method not in ("GET", "HEAD"):
        return network_auth_required(portal, request)
    probe = match_probe(request.headers.get("Host"), request.path)
    if probe is None:
        return redirect_to_portal(portal, request, with_url=True)
    ip = request[ADDRESS]
    gate = portal.probes
    if dnat_brought(portal, request):
        # DNAT brings only captive addresses (restricted, warned and not acknowledged),
        # and a change of state cuts their tracked flows: no question needed
        gate.by_dnat += 1
        return redirect_to_portal(portal, request, with_url=False)
    if gate.known_captive(ip):
        return redirect_to_portal(portal, request, with_url=False)
    peek = getattr(portal.link, "peek", None)
    if (peek is None or not peek(ip)[0]) and not gate.may_ask():
        # over the question budget (a storm of new addresses): the answer the
        # daemon's silence gets, which is right for every address DNAT sends here
        return redirect_to_portal(portal, request, with_url=False)
    try:
        view = await portal.link.view(ip)
    except DaemonUnavailable as exc:
        log.warning("probe answered as captive, daemon unavailable: %s", exc)
        return redirect_to_portal(portal, request, with_url=False)
    if view is not None and view.captive:
        gate.remember(ip)
        return redirect_to_portal(portal, request, with_url=False)
    return probe_success(probe)
