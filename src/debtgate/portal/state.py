"""The per-application state shared by the portal's handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from debtgate.config.portal import PortalConfig
from debtgate.portal.i18n import choose_language
from debtgate.portal.lookup import DaemonLink
from debtgate.portal.pages import Pages
from debtgate.portal.render import PageBuilder
from debtgate.portal.security import Csrf, ProbeGate, RateLimiter, UrlSigner


@dataclass(slots=True)
class Portal:
    """Everything a handler needs."""

    config: PortalConfig
    link: DaemonLink
    pages: Pages
    csrf: Csrf
    limiter: RateLimiter
    signer: UrlSigner
    builder: PageBuilder = field(init=False)
    probes: ProbeGate = field(init=False)

    def __post_init__(self) -> None:
        self.builder = PageBuilder(self, self.config.cache_ttl)
        self.probes = ProbeGate(self.config.probe_cache_ttl, self.config.probe_question_rate)

    @classmethod
    def build(
        cls,
        config: PortalConfig,
        link: DaemonLink,
        secret: bytes,
        clock: Callable[[], float] | None = None,
    ) -> Portal:
        limiter = (
            RateLimiter(config.rate_limit, config.rate_burst, clock=clock)
            if clock
            else RateLimiter(config.rate_limit, config.rate_burst)
        )
        return cls(config, link, Pages(config), Csrf(secret), limiter, UrlSigner(secret))

    def language(self, request: web.Request, subscriber: str | None = None) -> str:
        """The page language for ``request`` (``?lang=``, subscriber, Accept-Language)."""
        explicit = request.query.get("lang")
        if FORM_LANG in request:
            explicit = request[FORM_LANG]
        return self.choose_language(explicit, subscriber, request.headers.get("Accept-Language"))

    def choose_language(self, explicit: str | None, subscriber: str | None,
                        accept: str | None) -> str:
        """The page language from ``?lang=``, the subscriber's and Accept-Language."""
        return choose_language(
            self.pages.languages,
            self.config.default_language,
            explicit=explicit,
            subscriber=subscriber,
            accept=accept,
        )


PORTAL: web.AppKey[Portal] = web.AppKey("portal", Portal)

_RequestKey: Any = getattr(web, "RequestKey", None)  # aiohttp >= 3.13


def _key(name: str) -> Any:
    return _RequestKey(name, str) if _RequestKey is not None else f"debtgate.{name}"


ADDRESS: Any = _key("address")
"""Request key: the asking address (text), set by the address middleware."""
FORM_LANG: Any = _key("form_lang")
"""Request key: the language field of a POSTed form."""
