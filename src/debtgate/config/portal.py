"""Configuration of the captive portal: the ``[portal]`` section of the main config."""

from __future__ import annotations

import ipaddress
import string
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from debtgate.config.base import Section

TEMPLATE_FIELDS = frozenset({"amount", "amount_kopecks", "account", "currency"})
"""Placeholders allowed in ``sbp_template`` and payment link URLs."""


def check_url_template(value: str) -> str:
    """Accept an http(s) URL whose ``{placeholders}`` are all in :data:`TEMPLATE_FIELDS`."""
    if urlsplit(value).scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    for _, field, spec, conv in string.Formatter().parse(value):
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conv:
            allowed = ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
            raise ValueError(f"unknown placeholder {{{field}}}: allowed are {allowed}")
    return value


def check_http_url(value: str) -> str:
    """Accept an absolute http(s) URL with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


HttpUrl = Annotated[str, AfterValidator(check_http_url)]
UrlTemplate = Annotated[str, AfterValidator(check_url_template)]


class PaymentLink(Section):
    """One way to pay shown on the page."""

    title: str = Field(min_length=1, max_length=80)
    """The link text, e.g. "Bank card"."""
    url: UrlTemplate
    """Target URL; may contain {amount}, {amount_kopecks}, {account}, {currency}."""


class Contacts(Section):
    """How subscribers reach the operator."""

    phone: str = ""
    """Support phone number as shown (a tel: link is derived from it)."""
    email: str = ""
    """Support e-mail address."""
    hours: str = ""
    """Opening hours of the support line, free text."""


class PortalConfig(Section):
    """The captive portal (``debtgate portal``)."""

    listen: str = ""
    """Address the HTTP and HTTPS listeners bind to (the DNAT target); empty: every
    address, IPv4 and IPv6 (both nft.portal_v4 and nft.portal_v6 reachable)."""
    port: int = Field(default=8080, ge=1, le=65535)
    """TCP port of the HTTP listener."""
    public_url: HttpUrl = "http://10.255.255.1:8080/"
    """Canonical URL of the portal; requests for any other host are treated as intercepted."""
    https_port: int | None = Field(default=None, ge=1, le=65535)
    """TCP port of the HTTPS listener (RFC 8908 API); needs tls_cert_file and tls_key_file."""
    https_url: HttpUrl | None = None
    """Public HTTPS URL of the portal (the certificate's name); default: public_url's host
    with https_port."""
    tls_cert_file: Path | None = None
    """PEM certificate chain for the HTTPS listener."""
    tls_key_file: Path | None = None
    """PEM private key for the HTTPS listener."""
    venue_info_url: HttpUrl | None = None
    """Optional venue-info-url of the RFC 8908 API (e.g. the operator's web site)."""
    trusted_proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    """Peers (addresses or prefixes) whose X-Forwarded-For header is believed."""
    daemon_socket: Path = Path("/run/debtgate/portal.sock")
    """Unix socket of the daemon's local portal API."""
    cache_ttl: float = Field(default=2.0, ge=0, le=60)
    """Seconds a subscriber view fetched from the daemon is reused."""
    cache_size: int = Field(default=10000, ge=0)
    """Maximum number of addresses kept in the view cache (per worker)."""
    probe_cache_ttl: float = Field(default=0.0, ge=0, le=600)
    """Seconds an address the daemon called captive gets the sign-in answer to its OS
    detection probes without asking again (0: off). A probe normally arrives by DNAT,
    only while the address is captive, but a stale conntrack entry can bring one right
    after an unblock: with this on, that probe gets the sign-in answer until the verdict
    expires. An acknowledgement or self-service action from this worker forgets it."""
    probe_question_rate: float = Field(default=50.0, gt=0)
    """View questions per second one worker asks the daemon for OS detection probes;
    beyond it a probe gets the sign-in answer unasked, as when the daemon is down."""
    rate_limit: float = Field(default=5.0, gt=0)
    """Sustained requests per second allowed per client address (per worker)."""
    rate_burst: int = Field(default=40, ge=1)
    """Requests a client address may make in a burst before getting 429."""
    workers: int = Field(default=1, ge=1, le=64)
    """Worker processes sharing the port (SO_REUSEPORT)."""
    templates_dir: Path | None = None
    """Directory searched before the shipped templates (same names: <page>.html); its
    locale/<lang>/LC_MESSAGES/messages.po adds or replaces a language."""
    default_language: str = "ru"
    """Language used when neither the subscriber nor the browser asks for a shipped one."""
    operator_name: str = "Your provider"
    """Operator name shown in the page header."""
    cabinet_url: HttpUrl | None = None
    """Subscriber's personal cabinet (must be in the walled garden)."""
    payment_links: list[PaymentLink] = []
    """Payment pages shown on blocked and warn pages (must be in the walled garden)."""
    sbp_template: UrlTemplate | None = None
    """SBP payment link template for the QR code, e.g.
    https://qr.nspk.ru/AD10...?type=02&sum={amount_kopecks}&cur=RUB&account={account}."""
    contacts: Contacts = Contacts()
    """Support contacts shown on every page."""
    csrf_secret_file: Path | None = None
    """File with the CSRF HMAC secret (shared by all workers); generated at start if unset."""
    fast_path: bool = True
    """The front door: answer the plain ``GET /`` of the stub page (from the page cache)
    and the intercept's ``302`` without the framework (httptools; strict, anything else
    goes to aiohttp). Off: aiohttp serves every request, about 0.18x nginx's stub-page
    throughput on one core instead of 1.44x, p99 about 1 s instead of 13 ms (see
    docs/portal.md)."""
    poll_interval: float = Field(default=5.0, ge=1, le=300)
    """Seconds between the page's background checks of /api/state."""

    @field_validator("default_language")
    @classmethod
    def _lang_code(cls, value: str) -> str:
        if not value.isalpha() or not 2 <= len(value) <= 8:
            raise ValueError("must be a language code such as ru or en")
        return value.lower()

    @model_validator(mode="after")
    def _tls_complete(self) -> PortalConfig:
        tls = (self.https_port, self.tls_cert_file, self.tls_key_file)
        if any(v is not None for v in tls) and not all(v is not None for v in tls):
            raise ValueError("https_port, tls_cert_file and tls_key_file go together")
        return self

    def listens_on(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """False when ``listen`` certainly does not cover ``address`` (another address,
        or the wildcard of the other family); a host name is given the benefit of doubt."""
        if not self.listen:
            return True
        try:
            bound = ipaddress.ip_address(self.listen.strip("[]"))
        except ValueError:
            return True
        if bound.version != address.version:
            return False
        return bound.is_unspecified or bound == address

    @property
    def canonical_hosts(self) -> frozenset[str]:
        """Host names (lower case, no port, IPv6 in brackets) the portal answers as itself."""
        hosts = set()
        for url in (self.public_url, self.https_url):
            host = (urlsplit(url).hostname or "").lower() if url else ""
            if host:
                hosts.add(f"[{host}]" if ":" in host else host)
        return frozenset(hosts)

    @property
    def captive_portal_url(self) -> str:
        """The HTTPS URL of the portal for RFC 8908, or public_url when there is no TLS."""
        if self.https_url:
            return self.https_url
        if self.https_port is None:
            return self.public_url
        host = urlsplit(self.public_url).hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{host}{port}/"
