"""The background cutter: the engine never waits for a cut; what is queued while a cut
runs goes in the next one, once per address; failures do not stop it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from debtgate.kernel.conntrack import BackgroundCutter


class SlowCutter:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def cut(self, elements: Sequence[str]) -> int:
        self.calls.append(list(elements))
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise OSError("netlink said no")
        return len(elements)


async def _until(pred: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():  # type: ignore[operator]
            await asyncio.sleep(0.001)


async def test_cut_returns_at_once_and_batches_what_came_meanwhile() -> None:
    inner = SlowCutter()
    counted: list[int] = []
    cuts = BackgroundCutter(inner, counted.append)
    task = asyncio.create_task(cuts.run())
    try:
        assert await cuts.cut(["10.0.0.1"]) == 0  # queued, not waited for
        await _until(lambda: inner.calls)
        assert not cuts.idle()
        # While the first cut runs: a storm's slice and a payment, one address twice.
        await cuts.cut([f"10.0.1.{i}" for i in range(5)])
        await cuts.cut(["10.0.1.0", "10.0.2.1"])
        inner.release.set()
        await _until(lambda: len(inner.calls) == 2 and cuts.idle())
        assert inner.calls[1] == [*(f"10.0.1.{i}" for i in range(5)), "10.0.2.1"]
        assert counted == [1, 6]
    finally:
        task.cancel()


async def test_a_failed_cut_is_logged_and_the_next_goes_on(caplog: object) -> None:
    inner = SlowCutter()
    inner.release.set()
    inner.fail_next = True
    counted: list[int] = []
    cuts = BackgroundCutter(inner, counted.append)
    task = asyncio.create_task(cuts.run())
    try:
        await cuts.cut(["10.0.0.1"])
        await _until(lambda: len(inner.calls) == 1 and cuts.idle())
        await cuts.cut(["10.0.0.2"])
        await _until(lambda: counted == [1])
        assert "conntrack cut failed for 1 addresses" in caplog.text  # type: ignore[attr-defined]
        assert await cuts.cut([]) == 0 and cuts.idle()
    finally:
        task.cancel()
