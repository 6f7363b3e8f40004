"""The portal channel follows its socket settings on a reload: a moved socket is served at
the new path and the old one removed; an unknown group refuses the whole reload."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import aiohttp
import pytest

from debtgate.config import ApiSection, Config
from debtgate.config.reloads import Reloads
from debtgate.daemon.extensions import PortalChannel
from debtgate.errors import ConfigError
from debtgate.model import State, Subscriber
from debtgate.view import SubscriberView, view_of

SUB = Subscriber("A-1", ("100.64.1.10",), State.BLOCKED)


class Portal:
    errors = 0

    def view(self, ip: str) -> SubscriberView | None:
        return view_of(SUB, ip) if ip == "100.64.1.10" else None

    async def acknowledge(self, ip: str) -> None:
        return None


class Engine:
    portal = Portal()


class Host:
    engine = Engine()
    nft = None


def config(sock: Path, group: str | None = None) -> Config:
    return Config(api=ApiSection(portal_socket=sock, portal_socket_group=group))


async def answers(sock: Path) -> int:
    conn = aiohttp.UnixConnector(path=str(sock))
    async with aiohttp.ClientSession(connector=conn) as s, \
            s.get("http://daemon/v1/view", params={"ip": "100.64.1.10"}) as r:
        return r.status


async def wait_for(path: Path) -> None:
    for _ in range(200):
        if path.is_socket():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


async def test_a_moved_socket_is_served_at_the_new_path_and_the_old_one_removed() -> None:
    work = Path(tempfile.mkdtemp(prefix="dgpc", dir="/tmp"))
    first, second = work / "a.sock", work / "b.sock"
    cfg = config(first)
    channel, reloads = PortalChannel(cfg), Reloads(cfg)
    channel.watch(reloads)
    task = asyncio.create_task(channel.run(Host()))  # type: ignore[arg-type]
    try:
        await wait_for(first)
        assert await answers(first) == 200
        with pytest.raises(ConfigError, match="no group 'no-such-group-dg'"):
            await reloads.reload(config(second, group="no-such-group-dg"))
        assert reloads.current is cfg and await answers(first) == 200  # nothing applied
        assert await reloads.reload(config(second)) == [
            "the portal channel (socket re-created)"]
        await wait_for(second)
        assert await answers(second) == 200
        for _ in range(100):
            if not first.exists():
                break
            await asyncio.sleep(0.02)
        assert not first.exists()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
