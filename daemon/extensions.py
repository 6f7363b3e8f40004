"""Optional parts the daemon runs beside the engine (portal channel, APIs, RADIUS, DNS garden).

Each extension has ``async run(daemon)`` (a named task in the daemon's TaskGroup)
and may have ``async reload(old_config, new_config)``.
"""

from __future__ import annotations

from typing import Any

from .config import Config


def default_extensions(config: Config) -> list[Any]:
    exts: list[Any] = []
    return exts
