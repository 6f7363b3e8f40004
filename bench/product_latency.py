"""Payment latency (scenario a: quiet and during a full resync) and resyncs (scenario d).

A trial: the prober starts connecting from a blocked prober account's address, the
payment (``INSERT INTO payments``, autocommit, on the lab's one billing connection)
commits; the latency runs from the COMMIT returning to the prober's first completed
connect. Afterwards the account is blocked again and the prober waits until it is
refused before the next trial.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from product_billing import PAY_SQL, REBLOCK_SQL
from product_lab import Lab, summary, until


async def reblock(lab: Lab, accounts: list[str]) -> None:
    """Block ``accounts`` again and wait until the prober is refused from each."""
    await lab.conn.execute(REBLOCK_SQL, accounts)
    addrs = [lab.plan.probers[a] for a in accounts]
    _, missing = await lab.prober.watch(addrs, "refused", timeout=300)
    if missing:
        raise RuntimeError(f"re-blocked accounts still pass: {missing}")


async def pay_staggered(lab: Lab, accounts: list[str], offsets: list[float], t0: float
                        ) -> list[tuple[str, float, float]]:
    """Pay ``accounts[k]`` at ``t0 + offsets[k]`` while the prober watches them all:
    (account, commit returned (monotonic), first connect - commit) per payment."""
    addrs = [lab.plan.probers[a] for a in accounts]
    await lab.prober.begin(addrs, "pass", timeout=max(offsets) + 300)
    commits: list[tuple[str, float]] = []
    for account, offset in zip(accounts, offsets, strict=True):
        delay = t0 + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await lab.conn.execute(PAY_SQL, account)
        commits.append((account, time.monotonic()))
    seen, _ = await lab.prober.result(timeout=max(offsets) + 320)
    # An account that never passed within 300 s counts as 300 s (said so by its value).
    return [(a, c, seen.get(lab.plan.probers[a], c + 300.0) - c) for a, c in commits]


async def quiet(lab: Lab, trials: int, gap: tuple[float, float] = (0.2, 1.2)
                ) -> dict[str, Any]:
    """One payment at a time, each ``gap`` seconds (uniform) after the previous trial's
    re-block was enforced: the daemon's after-change work (the persisted state, at
    most once a second; the audit copy) is met at any phase, as a real payment does."""
    accounts = list(lab.plan.probers)
    out: list[float] = []
    rng = random.Random(17)
    for k in range(trials):
        await asyncio.sleep(rng.uniform(*gap))
        account = accounts[k % len(accounts)]
        [(_, _, lat)] = await pay_staggered(lab, [account], [0.0], time.monotonic())
        out.append(lat)
        await reblock(lab, [account])
    return {**summary(out), "gap_s": list(gap), "latencies_s": [round(x, 4) for x in out]}


async def resync_once(lab: Lab) -> dict[str, Any]:
    """``POST /resync`` (a full snapshot and a kernel read-back): seconds until the
    status shows the new snapshot, and the kernel writes it caused."""
    before = await lab.daemon.status()
    last = before["feed"]["last_snapshot"]
    t0 = time.monotonic()
    await lab.daemon.api("POST", "/resync")

    async def done() -> bool:
        return bool((await lab.daemon.status())["feed"]["last_snapshot"] != last)

    seen = await until(done, 600, interval=0.2)
    await asyncio.sleep(1.0)  # the kernel read-back runs beside the snapshot
    after = await lab.daemon.status()
    return {"seen_s": None if seen is None else round(seen - t0, 3),
            "daemon_resync_s": after["feed"].get("last_resync_seconds"),
            "kernel_writes": after["kernel_writes"] - before["kernel_writes"],
            "drift_repairs": after["drift_repairs"] - before["drift_repairs"]}


async def during_resync(lab: Lab, trials: int, duration: float, per_round: int = 4,
                        max_rounds: int = 60) -> dict[str, Any]:
    """Payments spread over the first 90 % of a full resync (``duration`` seconds, as
    measured by :func:`resync_once`); only those committed before the resync's
    snapshot finished (the status's ``feed.last_snapshot``, wall clock) count."""
    accounts = list(lab.plan.probers)[:per_round]
    offsets = [k * 0.9 * duration / per_round for k in range(per_round)]
    during: list[float] = []
    after: list[float] = []
    rounds = 0
    while len(during) < trials and rounds < max_rounds:
        rounds += 1
        last = (await lab.daemon.status())["feed"]["last_snapshot"]
        await lab.daemon.api("POST", "/resync")
        t0 = time.monotonic()
        wall0 = time.time() - t0
        paid = await pay_staggered(lab, accounts, offsets, t0)

        async def finished(last: float = last) -> bool:
            return bool((await lab.daemon.status())["feed"]["last_snapshot"] != last)

        await until(finished, 600, interval=0.2)
        end = (await lab.daemon.status())["feed"]["last_snapshot"]
        for _, commit, lat in paid:
            (during if wall0 + commit < end else after).append(lat)
        await asyncio.sleep(1.0)  # the kernel read-back
        await reblock(lab, accounts)
    return {**summary(during), "rounds": rounds, "after_the_snapshot": summary(after),
            "latencies_s": [round(x, 4) for x in during]}
