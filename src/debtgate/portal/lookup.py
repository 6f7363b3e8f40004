"""What the portal knows about the asking address: the daemon's view over a Unix socket."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp

from debtgate.errors import DebtgateError
from debtgate.view import SubscriberView, decode_view

log = logging.getLogger(__name__)


SELFSERVICE_TIMEOUT = aiohttp.ClientTimeout(total=70)
"""A promise or resume waits for the billing's hook (whose own timeout is at most 60 s)."""


MAX_INFLIGHT = 8
"""View questions one worker has at the daemon at once: a storm of new addresses queues
here instead of in the daemon's event loop, between its enforcement work."""


class DaemonUnavailable(DebtgateError):
    """The daemon's portal API did not answer or answered nonsense."""


@dataclass(frozen=True, slots=True)
class SelfServiceResult:
    """The daemon's (the billing's) answer to a promise or a resume."""

    ok: bool
    reason: str | None = None
    days: int = 0


@dataclass(frozen=True, slots=True)
class AckResult:
    """Outcome of acknowledging a warning."""

    acknowledged: bool
    expires_in: int = 0


class DaemonLink(Protocol):
    """The portal's channel to the daemon."""

    async def view(self, ip: str) -> SubscriberView | None:
        """The view of the subscriber owning ``ip``, or None if the address is nobody's."""
        ...

    async def acknowledge(self, ip: str) -> AckResult:
        """Acknowledge the warning shown to ``ip``."""
        ...


class SelfServiceLink(Protocol):
    """The self-service half of the channel (a link without it offers no buttons)."""

    async def selfservice(self, action: str, ip: str, request_id: str
                          ) -> SelfServiceResult | None:
        """Ask for ``action`` (promise, resume) for ``ip``; None if the address is nobody's."""
        ...


class ViewCache:
    """A small LRU cache of views (None included) with a time to live."""

    def __init__(
        self, ttl: float, size: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, SubscriberView | None]] = OrderedDict()

    def get(self, ip: str) -> tuple[bool, SubscriberView | None]:
        """Return (hit, view)."""
        item = self._items.get(ip)
        if item is None:
            return False, None
        if item[0] <= self._clock():
            del self._items[ip]
            return False, None
        self._items.move_to_end(ip)
        return True, item[1]

    def peek(self, ip: str) -> tuple[bool, SubscriberView | None]:
        """Like :meth:`get` without refreshing the LRU order (the hot path's lookup)."""
        item = self._items.get(ip)
        if item is None or item[0] <= self._clock():
            return False, None
        return True, item[1]

    def put(self, ip: str, view: SubscriberView | None) -> None:
        if self._ttl <= 0 or self._size <= 0:
            return
        self._items[ip] = (self._clock() + self._ttl, view)
        self._items.move_to_end(ip)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, ip: str) -> None:
        self._items.pop(ip, None)

    def __len__(self) -> int:
        return len(self._items)


class UnixSocketLink:
    """:class:`DaemonLink` over HTTP on the daemon's Unix socket, with a brief cache."""

    def __init__(
        self,
        socket_path: Path | str,
        *,
        cache_ttl: float = 2.0,
        cache_size: int = 10000,
        timeout: float = 3.0,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        self._path = str(socket_path)
        self._slots = asyncio.Semaphore(max_inflight)
        self._cache = ViewCache(cache_ttl, cache_size)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._inflight: dict[str, asyncio.Task[SubscriberView | None]] = {}

    def peek(self, ip: str) -> tuple[bool, SubscriberView | None]:
        """(True, view) when the view of ``ip`` is cached, without asking the daemon."""
        return self._cache.peek(ip)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self._path),
                timeout=self._timeout,
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def view(self, ip: str) -> SubscriberView | None:
        hit, cached = self._cache.get(ip)
        if hit:
            return cached
        # One question per address at a time: concurrent requests of one address (a
        # browser's parallel connections, an OS probe storm) share the answer.
        task = self._inflight.get(ip)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(ip))
            self._inflight[ip] = task
            task.add_done_callback(
                lambda t: self._inflight.pop(ip) if self._inflight.get(ip) is t else None)
        return await asyncio.shield(task)

    async def _fetch(self, ip: str) -> SubscriberView | None:
        try:
            async with asyncio.timeout(self._timeout.total):
                async with self._slots:
                    return await self._fetch_now(ip)
        except TimeoutError as exc:
            raise DaemonUnavailable("daemon view timed out (queue)") from exc

    async def _fetch_now(self, ip: str) -> SubscriberView | None:
        try:
            async with self._client().get("http://daemon/v1/view", params={"ip": ip}) as resp:
                if resp.status == 404:
                    view = None
                elif resp.status == 200:
                    view = decode_view(await resp.read())
                else:
                    raise DaemonUnavailable(f"daemon answered {resp.status} to a view")
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            raise DaemonUnavailable(f"daemon view failed: {exc!r}") from exc
        if self._inflight.get(ip) is asyncio.current_task():
            self._cache.put(ip, view)  # not when an acknowledgement dropped it meanwhile
        return view

    def _forget(self, ip: str) -> None:
        self._cache.drop(ip)
        self._inflight.pop(ip, None)  # an answer in flight may predate the change

    async def acknowledge(self, ip: str) -> AckResult:
        self._forget(ip)
        try:
            async with self._client().post("http://daemon/v1/ack", json={"ip": ip}) as resp:
                if resp.status == 409:
                    return AckResult(acknowledged=False)
                if resp.status != 200:
                    raise DaemonUnavailable(f"daemon answered {resp.status} to an ack")
                data = await resp.json()
                return AckResult(
                    acknowledged=bool(data["acknowledged"]),
                    expires_in=int(data.get("expires_in") or 0),
                )
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            raise DaemonUnavailable(f"daemon ack failed: {exc!r}") from exc
        finally:
            self._forget(ip)

    async def selfservice(self, action: str, ip: str, request_id: str
                          ) -> SelfServiceResult | None:
        self._forget(ip)
        try:
            async with self._client().post(f"http://daemon/v1/{action}",
                                           json={"ip": ip, "request_id": request_id},
                                           timeout=SELFSERVICE_TIMEOUT) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise DaemonUnavailable(f"daemon answered {resp.status} to a {action}")
                data = await resp.json()
                return SelfServiceResult(ok=data["ok"] is True,
                                         reason=str(data["reason"]) if data.get("reason") else None,
                                         days=int(data.get("days") or 0))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            raise DaemonUnavailable(f"daemon {action} failed: {exc!r}") from exc
        finally:
            self._forget(ip)
