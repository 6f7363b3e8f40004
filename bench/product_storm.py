"""The month-start storm (scenario c), payments in its first 2 s (a) and its RSS (e).

One round: the watcher probes the storm's sample addresses (they pass), one UPDATE
blocks the storm's accounts (N/10, autocommit); from its COMMIT returning:

* **enforced**: every sampled address refused (the sample is spread over the
  billing's order, first and last included), then confirmed by ``nft -j list set``
  holding exactly the expected count (both times reported);
* **settled**, the last of three signals seen from outside: the management API's
  status (``sets.blocked_v4_host`` desired = kernel = expected, ``subscribers.blocked``
  = expected, ``sync.in_sync``), the audit trail (``debtgate.audit`` in the billing
  records every storm account as blocked), the persisted state (``state_dir/applied.json``
  and its journal, read as the daemon reads them at a start, holding the expected
  blocked set and written after the commit);
* meanwhile the prober accounts pay at 0, 0.25, ... 1.75 s after the commit;
* the daemon's VmRSS is sampled every 50 ms.

Then the storm is undone (one UPDATE) and the prober accounts blocked again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from product_billing import storm_addresses
from product_daemon import RssSampler
from product_lab import Lab, summary, until
from product_latency import pay_staggered, reblock
from product_net import kernel_set, wait_kernel_holds

from debtgate.enforce.persist import StateFile


async def _status_ok(lab: Lab, blocked: int) -> bool:
    st = await lab.daemon.status()
    s = st["sets"]["blocked_v4_host"]
    return bool(s["desired"] == s["kernel"] == blocked
                and st["subscribers"].get("blocked", 0) == blocked and st["sync"]["in_sync"])


def _persisted(lab: Lab, blocked: int, after_wall: float) -> bool:
    path = lab.work / "state" / "applied.json"
    try:
        if max(p.stat().st_mtime for p in (path, path.with_suffix(".journal"))) < after_wall:
            return False
    except OSError:
        return False
    saved = StateFile(path).load()  # the base and the journal, as a start reads them
    return saved is not None and len(saved.sets.get("blocked_v4_host", ())) == blocked


async def settle(lab: Lab, blocked: int, audit_after: int, audit_want: int,
                 after_wall: float, deadline: float = 600) -> dict[str, float | None]:
    """Monotonic times the status, the audit and the persisted state each showed it."""

    async def status() -> bool:
        return await _status_ok(lab, blocked)

    async def audit() -> bool:
        return await lab.audit_count(audit_after, "blocked") >= audit_want

    async def persisted() -> bool:
        return await asyncio.to_thread(_persisted, lab, blocked, after_wall)

    times = await asyncio.gather(until(status, deadline, 0.2), until(audit, deadline, 0.1),
                                 until(persisted, deadline, 0.1))
    return dict(zip(("status", "audit", "persisted"), times, strict=True))


async def storm_round(lab: Lab, pay: bool) -> dict[str, Any]:
    plan = lab.plan
    base = plan.blocked
    probers = list(plan.probers)
    paid = len(probers) if pay else 0
    blocked = base - paid + plan.storm_size
    sample = list(plan.storm_sample.values())
    wanted = set(storm_addresses(plan))
    mark = await lab.audit_mark()
    with RssSampler(lab.daemon.pid) as rss:
        await lab.watcher.begin(sample, "refused", timeout=300, pause=0.005)
        t0 = time.perf_counter()
        await lab.conn.execute(plan.storm_sql(block=True))
        commit = time.monotonic()
        commit_wall = time.time()
        update_s = time.perf_counter() - t0

        async def enforced() -> tuple[dict[str, float], list[str], float | None]:
            seen, missing = await lab.watcher.result(timeout=320)
            return seen, missing, await wait_kernel_holds(lab.gw, wanted, deadline=300)

        async def payments() -> list[tuple[str, float, float]]:
            if not pay:
                return []
            offsets = [k * 2.0 / len(probers) for k in range(len(probers))]
            return await pay_staggered(lab, probers, offsets, commit)

        (seen, missing, counted), pays = await asyncio.gather(enforced(), payments())
        done = await settle(lab, blocked, mark, plan.storm_size, commit_wall - 0.5)
    out: dict[str, Any] = {
        "commit_at": time.strftime("%H:%M:%S", time.localtime(commit_wall))
                     + f".{int(commit_wall * 1000) % 1000:03d}",
        "update_s": round(update_s, 3),
        "enforced_sample_s": None if missing else round(max(seen.values()) - commit, 3),
        "first_sample_s": round(min(seen.values()) - commit, 3) if seen else None,
        "kernel_count_s": None if counted is None else round(counted - commit, 3),
        "settled": {k: None if v is None else round(v - commit, 3) for k, v in done.items()},
        "rss_peak_mb": rss.peak,
        "payments": [{"offset_s": round(c - commit, 3), "latency_s": round(lat, 4)}
                     for _, c, lat in pays],
    }
    out["settled_s"] = (None if None in done.values()
                        else round(max(v for v in done.values() if v) - commit, 3))
    # Undo: the storm's accounts active again, the prober accounts blocked again.
    await lab.conn.execute(plan.storm_sql(block=False))

    async def undone() -> bool:
        return await _status_ok(lab, base - paid)

    await until(undone, 600)
    if pay:
        await reblock(lab, probers)
    await asyncio.sleep(1.0)
    return out


async def storms(lab: Lab, trials: int, max_rounds: int = 40) -> dict[str, Any]:
    """Storm rounds until ``trials`` payments were timed in their first 2 s (the first
    round times the storm alone, no payments)."""
    rounds = [await storm_round(lab, pay=False)]
    while sum(len(r["payments"]) for r in rounds) < trials and len(rounds) < max_rounds:
        rounds.append(await storm_round(lab, pay=True))
    elems = await asyncio.to_thread(kernel_set, lab.gw)
    lat = [p["latency_s"] for r in rounds for p in r["payments"]]
    return {"rounds": rounds, "payments": {**summary(lat), "latencies_s": lat},
            "kernel_after": None if elems is None else len(elems)}
