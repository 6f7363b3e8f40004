"""PostgreSQL -> nft at scale: cold sync, no-op resync, RSS (prints JSON).

Run as root:  .venv/bin/python bench/feed_sync.py [--subscribers 1000000]
              [--no-restrictions-first]
It starts a throwaway PostgreSQL with the reference schema, fills it, then
re-runs itself inside a throwaway network namespace where an Engine with the
real nft adapter is fed by the PostgresSource. The cold sync is timed twice from
the source's start: until the kernel holds every restricted element
(``cold_enforced_s``: the nft transaction adding the last of them returned, seen by
a wrapper of the engine's nft adapter; the set is checked with ``nft -j list set``
after) and until the engine has settled (``cold_settled_s``: snapshot applied,
inventory filled, lock free). The floor, same run: psql fetching every address as
text plus ``nft -f`` of the restricted elements (``floor_s``); psql fetching only
the restricted addresses is printed too (``floor_fetch_restricted_s``).
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


async def inner(dsn: str, n: int, options: dict[str, object]) -> dict[str, object]:
    engine, source = await start_daemon(dsn, **options)
    clock = engine.nft  # type: ignore[attr-defined]
    expected = {address_of(i) for i in range(10, n + 1, 10)}
    out: dict[str, object] = {"subscribers": n, **options}
    clock.expect(expected)
    started = clock.started
    task = asyncio.create_task(source.run(engine.handle))  # type: ignore[attr-defined]
    while not engine.stats.synced or engine.lock.locked():  # type: ignore[attr-defined]
        await asyncio.sleep(0.005)
    # Settled: the snapshot is applied, the inventory holds it, the lock is free.
    out["cold_settled_s"] = round(time.perf_counter() - started, 3)
    out["cold_enforced_s"] = round(clock.elapsed, 3) if clock.reached else None
    out["cold_nft_applies"] = clock.applies
    clock.verify()
    out["cold_apply_s"] = round(engine.stats.last_apply_seconds, 3)  # type: ignore[attr-defined]
    out["early_restricted"] = engine.stats.early_restricted  # type: ignore[attr-defined]
    out["blocked_elements"] = len(engine.committed["blocked_v4_host"])  # type: ignore[attr-defined]
    await engine.announced()  # type: ignore[attr-defined]
    out["rss_after_cold_mb"] = round(rss_mb(), 1)  # the daemon at rest after the cold sync
    kernel = kernel_set("blocked_v4_host")
    out["kernel_holds_expected"] = kernel == expected
    del kernel
    out["rss_after_kernel_read_mb"] = round(rss_mb(), 1)
    # No-op resync.
    writes = engine.stats.kernel_writes  # type: ignore[attr-defined]
    mark = source.health.last_snapshot  # type: ignore[attr-defined]
    started = time.perf_counter()
    source.request_resync()  # type: ignore[attr-defined]
    while source.health.last_snapshot == mark:  # type: ignore[attr-defined]
        await asyncio.sleep(0.005)
    out["noop_resync_s"] = round(time.perf_counter() - started, 3)
    out["noop_resync_kernel_writes"] = engine.stats.kernel_writes - writes  # type: ignore[attr-defined]
    out["rss_after_resync_mb"] = round(rss_mb(), 1)
    task.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--no-restrictions-first", action="store_true",
                        help="[source.postgres] restrictions_first = false")
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    options: dict[str, object] = {}
    if args.no_restrictions_first:
        options["restrictions_first"] = False
    if args.inner:
        print(json.dumps(asyncio.run(inner(args.inner, args.subscribers, options))))
        return
    n = args.subscribers
    server = billing(n)
    ns = f"dgbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        # The floor: psql fetching every address as text, nft -f of the restricted ones.
        started = time.perf_counter()
        server.psql("SELECT address::text FROM addresses", "-A", "-t", "-o", "/dev/null")
        fetch_floor = time.perf_counter() - started
        # Issue #3 words the floor as fetching "those 100,000 addresses": printed too.
        started = time.perf_counter()
        server.psql("SELECT d.address::text FROM addresses d JOIN accounts a"
                    " ON a.id = d.account_id WHERE a.state <> 'active'",
                    "-A", "-t", "-o", "/dev/null")
        restricted_fetch = time.perf_counter() - started
        blocked = [address_of(i) for i in range(10, n + 1, 10)]
        kernel_floor = nft_floor(blocked, ns)
        extra = ["--no-restrictions-first"] if args.no_restrictions_first else []
        result = run_inner(ns, __file__, ["--subscribers", str(n), *extra,
                                          "--inner", server.socket_dsn])
        result["floor_fetch_s"] = round(fetch_floor, 3)
        result["floor_nft_s"] = round(kernel_floor, 3)
        result["floor_nft_runs"] = list(FLOOR_RUNS)
        floor = fetch_floor + kernel_floor
        result["floor_s"] = round(floor, 3)
        result["floor_fetch_restricted_s"] = round(restricted_fetch, 3)
        narrow = restricted_fetch + kernel_floor
        if result["cold_enforced_s"] is not None:
            enforced = float(result["cold_enforced_s"])
            result["cold_enforced_ratio_narrow_floor"] = round(enforced / narrow, 2)
            result["cold_enforced_ratio"] = round(enforced / floor, 2)
        result["cold_settled_ratio"] = round(float(result["cold_settled_s"]) / floor, 2)
        print(json.dumps(result, indent=1))
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        server.cleanup()


if __name__ == "__main__":
    main()
