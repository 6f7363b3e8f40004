"""Month-start storm: 100,000 accounts blocked in ONE billing transaction (prints JSON).

Run as root:  .venv/bin/python bench/feed_storm.py [--subscribers 1000000] [--storm 100000]

A throwaway PostgreSQL with the reference schema holds N subscribers (every 10th
already blocked); inside a throwaway network namespace the Engine (real nft
adapter, shipped ruleset) is fed by the PostgresSource. After the cold sync one
UPDATE blocks ``--storm`` active accounts and commits; we time commit -> the kernel
holds all of them (``enforced_s``: the nft transaction adding the last of them
returned, seen by a wrapper of the engine's nft adapter; the set is checked with
``nft -j list set`` after) and commit -> the engine has settled (``settled_s``: the
inventory holds the new states and the engine's lock is free). The mass-change
guard would hold such a storm for approval; the benchmark runs with ``[guard]
enabled = false`` (the guard's hold is a policy, not a cost). The floor, measured
in the same namespace: ``nft -f`` of the same elements into a scratch hash set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feed_common import (  # noqa: E402
    FLOOR_RUNS,
    address_of,
    billing,
    kernel_set,
    nft_floor,
    rss_mb,
    run_inner,
    start_daemon,
)


def storm_ids(n: int, storm: int) -> list[int]:
    """Active accounts (i % 10 != 0), the first ``storm`` of them."""
    out = [i for i in range(1, n + 1) if i % 10][:storm]
    if len(out) < storm:
        raise SystemExit(f"only {len(out)} active accounts for a storm of {storm}")
    return out


async def inner(dsn: str, n: int, storm: int) -> dict[str, object]:
    import asyncpg

    engine, source = await start_daemon(dsn, guard=False)
    out: dict[str, object] = {"subscribers": n, "storm": storm}
    task = asyncio.create_task(source.run(engine.handle))  # type: ignore[attr-defined]
    while not engine.stats.synced:  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
    ids = storm_ids(n, storm)
    last = storm - 1
    wanted = {address_of(i) for i in ids}
    conn = await asyncpg.connect(dsn)
    await asyncio.sleep(0.5)  # the source is listening and idle
    hi = ids[last]
    accounts = [f"acc{i}" for i in ids]  # before the clock starts: not in its process time
    writes = engine.stats.kernel_writes  # type: ignore[attr-defined]
    clock = engine.nft  # type: ignore[attr-defined]
    clock.expect(wanted)
    sql = ("UPDATE accounts SET state = 'blocked', balance = -500, since = current_date"
           f" WHERE id = ANY(ARRAY(SELECT 'acc' || i FROM generate_series(1, {hi}) i"
           " WHERE i % 10 <> 0))")
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(sql)
        update_s = time.perf_counter() - started
        committed_at = time.perf_counter()
    out["billing_update_s"] = round(update_s, 3)
    out["commit_s"] = round(time.perf_counter() - committed_at, 3)
    committed_at = time.perf_counter()
    clock.started = committed_at
    inventory = engine.inventory  # type: ignore[attr-defined]
    while True:
        # Settled: every element enforced, the inventory holds the new states and the
        # engine's lock is free.
        if (clock.reached is not None and not engine.lock.locked()  # type: ignore[attr-defined]
                and all(getattr(inventory.get(a), "state", None) == "blocked"
                        for a in accounts)):
            break
        if time.perf_counter() - committed_at > 120:
            raise SystemExit("storm not enforced within 120 s")
        await asyncio.sleep(0.002)
    out["settled_s"] = round(time.perf_counter() - committed_at, 3)
    clock.verify()
    out["enforced_s"] = round(clock.elapsed, 3)
    out["first_enforced_s"] = round(clock.first_elapsed, 3)
    kernel = kernel_set("blocked_v4_host")
    out["kernel_holds_expected"] = wanted <= kernel and len(kernel) == n // 10 + storm
    out["kernel_writes"] = engine.stats.kernel_writes - writes  # type: ignore[attr-defined]
    out["deltas"] = source.counters["deltas"]  # type: ignore[attr-defined]
    out["rss_mb"] = round(rss_mb(), 1)
    await conn.close()
    task.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--storm", type=int, default=100_000)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(inner(args.inner, args.subscribers, args.storm))))
        return
    n = args.subscribers
    server = billing(n)
    ns = f"dgstorm{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        floor = nft_floor([address_of(i) for i in storm_ids(n, args.storm)], ns)
        result = run_inner(ns, __file__, ["--subscribers", str(n), "--storm", str(args.storm),
                                          "--inner", server.socket_dsn])
        result["floor_nft_s"] = round(floor, 3)
        result["floor_nft_runs"] = list(FLOOR_RUNS)
        result["ratio_enforced"] = round(float(result["enforced_s"]) / floor, 2)
        result["ratio_settled"] = round(float(result["settled_s"]) / floor, 2)
        print(json.dumps(result, indent=1))
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        server.cleanup()


if __name__ == "__main__":
    main()
