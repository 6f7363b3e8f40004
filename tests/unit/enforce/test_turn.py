"""The turn: urgent holders go before the next bulk slice, bulk jobs one at a time."""

from __future__ import annotations

import asyncio

from debtgate.enforce.turn import Turn


async def test_an_urgent_holder_goes_before_the_next_slice() -> None:
    turn, order = Turn(), []
    in_slice = asyncio.Event()
    go_on = asyncio.Event()

    async def bulk() -> None:
        for i in range(3):
            async with turn.slice():
                order.append(f"slice{i}")
                if i == 0:
                    in_slice.set()
                    await go_on.wait()

    async def urgent(name: str) -> None:
        async with turn.urgent():
            order.append(name)

    job = asyncio.create_task(bulk())
    await in_slice.wait()
    payments = [asyncio.create_task(urgent(f"pay{i}")) for i in range(2)]
    await asyncio.sleep(0)
    go_on.set()
    await asyncio.gather(job, *payments)
    assert order == ["slice0", "pay0", "pay1", "slice1", "slice2"]
    assert turn.slices == 3 and turn.overtaken >= 1


async def test_a_slice_that_waits_lets_a_later_urgent_holder_go_first() -> None:
    """A slice queued on the lock before an urgent holder still lets it go first."""
    turn, order = Turn(), []
    holder = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with turn.urgent():
            holder.set()
            await release.wait()
            order.append("first")

    async def bulk() -> None:
        async with turn.slice():
            order.append("slice")

    async def urgent() -> None:
        async with turn.urgent():
            order.append("urgent")

    tasks = [asyncio.create_task(first())]
    await holder.wait()
    tasks.append(asyncio.create_task(bulk()))
    await asyncio.sleep(0)  # the slice waits on the lock now
    tasks.append(asyncio.create_task(urgent()))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["first", "urgent", "slice"]


async def test_bulk_jobs_run_one_at_a_time() -> None:
    turn, running, most = Turn(), 0, 0

    async def job() -> None:
        nonlocal running, most
        async with turn.bulk_job():
            running += 1
            most = max(most, running)
            for _ in range(3):
                async with turn.slice():
                    await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(job() for _ in range(3)))
    assert most == 1


async def test_back_to_back_slices_let_the_loop_deliver_a_notification_between_them() -> None:
    """Slices that never await (CPU work) still let callbacks run between them: a
    driver reads a socket in one loop iteration and calls its listener in the next;
    the listener's urgent work goes before the following slice."""
    turn, order = Turn(), []
    loop = asyncio.get_running_loop()

    async def pay() -> None:
        async with turn.urgent():
            order.append("pay")

    def listener() -> None:  # as a billing source's: the turn is held at once
        turn.hold(True)
        task = loop.create_task(pay())
        task.add_done_callback(lambda _: turn.hold(False))
        tasks.append(task)

    tasks: list[asyncio.Task[None]] = []
    for i in range(4):
        async with turn.slice():
            order.append(f"slice{i}")
            if i == 0:  # the socket became readable during this slice
                loop.call_soon(loop.call_soon, listener)
    await asyncio.gather(*tasks)
    assert order == ["slice0", "pay", "slice1", "slice2", "slice3"]
    assert turn.overtaken == 1
