"""The daemon extension that serves the management API (``[api]`` section).

``ManagementExtension(config)`` goes into ``default_extensions``; its
``run(daemon)`` serves :func:`~debtgate.api.mgmt.make_mgmt_app` over
``daemon.management`` if the daemon has that attribute, else over the daemon
itself (either must implement :class:`~debtgate.api.mgmt.ManagementBackend`).
A reload that changes the listeners' ``[api]`` fields or the token file's content
restarts the listeners (so rotating the token is: write the file, ``systemctl reload``).
"""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path
from typing import Any

from aiohttp import web

from debtgate.api.mgmt import make_mgmt_app, serve_mgmt
from debtgate.config import ApiSection, Config
from debtgate.config.reloads import Reloads
from debtgate.errors import ConfigError
from debtgate.host import Extension, ExtensionHost

log = logging.getLogger(__name__)

MIN_TOKEN = 16


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (whitespace stripped); ConfigError if unusable."""
    try:
        text = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"api.token_file: cannot read {path}: {exc}"]) from None
    if len(text) < MIN_TOKEN or any(c.isspace() or not c.isprintable() for c in text):
        raise ConfigError([f"api.token_file: {path} must hold one token of at least "
                           f"{MIN_TOKEN} printable characters"])
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("api.token_file %s is readable by group/others; chmod 600 it", path)
    return text


def token_for(api: ApiSection) -> str | None:
    """The token the TCP listener needs, or None when there is no TCP listener."""
    if api.listen is None:
        return None
    if api.token_file is None:
        raise ConfigError(["api.listen needs api.token_file (the bearer token)"])
    return read_token(api.token_file)


class ManagementExtension(Extension):
    """Serves the management API for as long as the daemon runs."""

    def __init__(self, config: Config) -> None:
        self.api = config.api
        self.token = token_for(config.api)
        self._restart = asyncio.Event()

    async def run(self, daemon: ExtensionHost) -> None:
        backend: Any = getattr(daemon, "management", daemon)  # the daemon's Admin; a fake
        while True:
            runners: list[web.AppRunner] = []
            try:
                app = make_mgmt_app(backend, self.token)
                runners = await serve_mgmt(app, self.api.socket, self.api.listen)
                await self._restart.wait()
                self._restart.clear()
                log.info("management API: restarting listeners for the new [api] config")
            finally:
                for runner in runners:
                    await runner.cleanup()

    def watch(self, reloads: Reloads) -> None:
        """Restart the listeners when their settings or the token file's content change
        (an unreadable token file refuses the reload)."""
        reloads.on("the management API (listeners restarted)",
                   ["api.socket", "api.listen", "api.token_file"], self._reload,
                   outside=lambda config: token_for(config.api))

    async def _reload(self, _old: Config, new: Config) -> None:
        self.api, self.token = new.api, token_for(new.api)
        self._restart.set()
