from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from debtgate.config.radius import RadiusConfig  # noqa: E402
from debtgate.radius.dispatcher import CoaDispatcher  # noqa: E402

SECRET = "s3cret-for-tests"
PROFILES = ["mikrotik", "cisco-isg", "juniper-mx", "accel-ppp-ipoe", "accel-ppp-pppoe",
            "huawei", "generic-disconnect"]
KNOWN = [f"sess-{p}" for p in PROFILES] + [f"restore-{p}" for p in PROFILES] + ["acct-sess-1"]


def make_config(tmp_path: Path, port: int, profile: str, accounting: dict[str, Any] | None = None,
                **nas: Any) -> RadiusConfig:
    secret = tmp_path / "nas.secret"
    secret.write_text(SECRET + "\n")
    data: dict[str, Any] = {
        "enabled": True,
        "nas": [{"name": "bras1", "address": "127.0.0.1", "port": port,
                 "secret_file": str(secret), "profile": profile, "timeout": 0.3,
                 "retries": 2, "backoff": 0.05, "rate": 10_000, "burst": 1000, **nas}],
    }
    if accounting is not None:
        data["accounting"] = {"secret_file": str(secret), **accounting}
    return RadiusConfig.model_validate(data)


@contextlib.asynccontextmanager
async def running(dispatcher: CoaDispatcher) -> AsyncIterator[CoaDispatcher]:
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0)
    try:
        yield dispatcher
    finally:
        dispatcher.close()
        await asyncio.wait_for(task, 5)


async def wait_result(dispatcher: CoaDispatcher, account: str, timeout: float = 5.0,
                      result: str | None = None) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = dispatcher.last_result(account)
        if got is not None and (result is None or got["result"] == result):
            return got
        await asyncio.sleep(0.01)
    raise AssertionError(f"no result for {account}: {dispatcher.last_result(account)}")


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A FreeRADIUS CoA server that ACKs the KNOWN Acct-Session-Ids and NAKs others (503)."""
    from freeradius import BINARY, FreeRadius, free_udp_port

    if BINARY is None:
        pytest.skip("freeradius binary not installed (apt-get install freeradius)")
    fr = FreeRadius(tmp_path_factory.mktemp("freeradius"), SECRET, free_udp_port(), KNOWN)
    fr.start()
    yield fr
    fr.stop()
