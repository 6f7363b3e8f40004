"""Optional parts the daemon runs beside the engine (portal channel, APIs, RADIUS, DNS garden).

Each extension has ``async run(daemon)`` (a named task in the daemon's TaskGroup)
and may have ``async reload(old_config, new_config)``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from .config import Config

if TYPE_CHECKING:
    from .app import Daemon

log = logging.getLogger(__name__)


class PortalChannel:
    """The Unix socket the unprivileged portal asks subscriber views from."""

    def __init__(self, config: Config) -> None:
        self.path = config.api.portal_socket
        self.group = config.api.portal_socket_group

    async def run(self, daemon: Daemon) -> None:
        from .portal_api import make_portal_api, serve_unix  # noqa: PLC0415

        runner = await serve_unix(make_portal_api(daemon.engine), self.path, group=self.group)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def default_extensions(config: Config) -> list[Any]:
    exts: list[Any] = [PortalChannel(config)]
    return exts
