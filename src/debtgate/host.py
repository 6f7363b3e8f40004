"""What the daemon's parts get of the daemon: narrow interfaces, not the whole process.

The daemon (:class:`debtgate.daemon.app.Daemon`) owns the loop, the engine, the kernel adapter and
the billing source; the parts that run beside the engine see only what they need:

* an **extension** (the portal channel, self-service, RADIUS, the DNS garden:
  :mod:`debtgate.daemon.extensions`) gets an :class:`ExtensionHost`: the engine and the kernel
  adapter;
* the **management API** (:mod:`debtgate.api.admin`) gets an :class:`AdminHost`: that, plus
  the config, the source's health, the overrides and the status of the extensions.

They import this module, never :mod:`debtgate.daemon.app`, which imports them: the imports point
down only.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Coroutine
from datetime import datetime
from typing import Any, Protocol

from debtgate.billing.base import BillingSource
from debtgate.config import Config
from debtgate.config.reloads import Reloads
from debtgate.enforce.engine import Engine
from debtgate.enforce.overrides import Override
from debtgate.kernel.nft import NftAdapter
from debtgate.model import Subscriber


class ExtensionHost(Protocol):
    """What an extension gets of the daemon (its ``run(host)`` argument)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def nft(self) -> NftAdapter: ...


class Extension(abc.ABC):
    """A part the daemon runs beside the engine (the portal channel, the management API,
    self-service, RADIUS, the DNS garden). ``run`` is its named task; the other three
    say nothing unless the part overrides them."""

    @abc.abstractmethod
    async def run(self, daemon: ExtensionHost) -> None:
        """The part's task in the daemon's TaskGroup (cancelled at shutdown)."""

    def watch(self, reloads: Reloads) -> None:
        """Register the config sections the part follows (none by default)."""
        return None

    def status(self, out: dict[str, Any]) -> None:
        """Add the part's state to the NOC's ``/status`` (nothing by default)."""
        return None

    def explain(self, sub: Subscriber, out: dict[str, Any]) -> None:
        """Add the part's view of one subscriber to ``explain`` (nothing by default)."""
        return None


class AdminHost(ExtensionHost, Protocol):
    """What the management API gets of the daemon."""

    @property
    def config(self) -> Config: ...

    @property
    def source(self) -> BillingSource: ...

    @property
    def started(self) -> float:
        """When the process started (wall clock)."""

    @property
    def degraded(self) -> dict[str, str]:
        """Transient outside failures, by part: shown on the status."""

    @property
    def extensions(self) -> list[Extension]: ...

    async def add_override(self, account: str, action: str, reason: str,
                           expires_at: datetime | None, author: str) -> Override: ...

    async def delete_override(self, override_id: str, author: str) -> bool: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]: ...
