"""Optional parts the daemon runs beside the engine (portal channel, APIs, RADIUS, DNS garden).

Each extension has ``async run(daemon)`` (a named task in the daemon's TaskGroup) and
``watch(reloads)``, where it registers the config sections it follows
(:mod:`debtgate.config.reloads`).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
from typing import Any

from debtgate.api.extension import ManagementExtension
from debtgate.api.portal_channel import make_portal_api, serve_unix
from debtgate.config import Config
from debtgate.config.reloads import Reloads
from debtgate.core.transitions import Transition
from debtgate.daemon.dnsgarden import DnsGarden
from debtgate.errors import ConfigError
from debtgate.host import Extension, ExtensionHost
from debtgate.model import Session, Subscriber
from debtgate.radius.dispatcher import CoaDispatcher
from debtgate.radius.intent import Intent
from debtgate.selfservice.service import SelfService

log = logging.getLogger(__name__)


class PortalChannel(Extension):
    """The Unix socket the unprivileged portal asks subscriber views from."""

    def __init__(self, config: Config) -> None:
        self.path = config.api.portal_socket
        self.group = config.api.portal_socket_group
        self._restart = asyncio.Event()

    def watch(self, reloads: Reloads) -> None:
        reloads.check("the portal socket's group", ["api.portal_socket_group"],
                      self._check_group)
        reloads.on("the portal channel (socket re-created)",
                   ["api.portal_socket", "api.portal_socket_group"], self._reload)

    async def _check_group(self, _old: Config, new: Config) -> None:
        group = new.api.portal_socket_group
        if group is not None:
            try:
                grp.getgrnam(group)
            except KeyError:
                raise ConfigError([f"api.portal_socket_group: no group {group!r}"]) from None

    async def _reload(self, _old: Config, new: Config) -> None:
        self.path, self.group = new.api.portal_socket, new.api.portal_socket_group
        self._restart.set()

    async def run(self, daemon: ExtensionHost) -> None:
        while True:
            runner = await serve_unix(make_portal_api(daemon.engine.portal), self.path,
                                      group=self.group)
            served = self.path
            try:
                await self._restart.wait()
                self._restart.clear()
            finally:
                await runner.cleanup()
                if self.path != served:  # moved: no stale socket left behind
                    with contextlib.suppress(OSError):
                        served.unlink()


class Radius(Extension):
    """Tells the BRAS/NAS about every transition (CoA / Disconnect-Message)."""

    def __init__(self, config: Config) -> None:
        self.dispatcher = CoaDispatcher(config.radius)

    def on_transition(self, change: Transition, sub: Subscriber | None) -> None:
        if change.new is None or sub is None:
            return  # gone from billing: nothing to tell the NAS
        self.dispatcher.submit(Intent(change.account, change.new, sub.session or Session(),
                                      sub.addresses))

    async def run(self, daemon: ExtensionHost) -> None:
        daemon.engine.announcer.listeners.append(self.on_transition)
        try:
            await self.dispatcher.run()
        finally:
            self.dispatcher.close()

    def status(self, out: dict[str, Any]) -> None:
        nas = self.dispatcher.status().get("nas", {})
        out["radius"] = nas
        degraded = out.setdefault("degraded", {})
        for name, info in nas.items():
            why = info.get("degraded")
            if why:
                degraded[f"radius:{name}"] = why

    def explain(self, sub: Subscriber, out: dict[str, Any]) -> None:
        out["radius"] = self.dispatcher.last_result(sub.account)


def default_extensions(config: Config) -> list[Extension]:
    exts: list[Extension] = [PortalChannel(config), ManagementExtension(config)]
    # -- self-service (issue 7): promised payment and resume; docs/selfservice.md --
    if config.selfservice.enabled:
        exts.append(SelfService(config))
    # -----------------------------------------------------------------------------
    if config.radius.enabled:
        exts.append(Radius(config))
    if config.garden.domains:
        exts.append(DnsGarden(config))
    return exts
