"""What ``debtgate portal --config FILE`` runs."""

from __future__ import annotations

import logging
from typing import Any

from debtgate.config.portal import PortalConfig
from debtgate.portal.server import run_portal

log = logging.getLogger(__name__)


def portal_config(config: Any) -> PortalConfig:
    """The ``[portal]`` section of the main config (defaults when absent).

    Unless the section sets ``daemon_socket`` itself, the socket comes from
    ``[api].portal_socket`` so that daemon and portal agree by construction.
    """
    section = getattr(config, "portal", None)
    portal = section if isinstance(section, PortalConfig) else PortalConfig()
    api = getattr(config, "api", None)
    socket = getattr(api, "portal_socket", None)
    if socket is not None and "daemon_socket" not in portal.model_fields_set:
        portal = portal.model_copy(update={"daemon_socket": socket})
    return portal


def run_from_config(config: Any, workers: int | None = None) -> int:
    """Run the portal of the main ``config`` in the foreground; return the exit code."""
    portal = portal_config(config)
    log.info("starting the portal for %s with %s worker(s)", portal.public_url,
             workers or portal.workers)
    return run_portal(portal, workers)
