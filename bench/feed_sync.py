"""PostgreSQL -> nft at scale: cold sync, no-op resync, month-start storm, RSS (prints JSON).

Run as root:  .venv/bin/python bench/feed_sync.py [--subscribers 1000000]
It starts a throwaway PostgreSQL with the reference schema, fills it, then
re-runs itself inside a throwaway network namespace where an Engine with the
real nft adapter is fed by the PostgresSource.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feed_common import address_of, billing, rss_mb  # noqa: E402


def nft_floor(elements: list[str], ns: str) -> float:
    """``nft -f`` of the same elements into a scratch set: the kernel's floor."""
    body = ", ".join(elements)
    script = ("table inet dgfloor { set s { type ipv4_addr; }; }\n"
              f"add element inet dgfloor s {{ {body} }}\n")
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(script)
    started = time.perf_counter()
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", f.name], check=True)
    took = time.perf_counter() - started
    subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "dgfloor"],
                   check=True)
    os.unlink(f.name)
    return took


async def inner(dsn: str, n: int) -> dict[str, object]:
    from debtgate.adapters.conntrack import NullCutter
    from debtgate.adapters.nft import NftAdapter, read_template, render_ruleset
    from debtgate.config import DEFAULT_RULESET
    from debtgate.engine import Engine
    from debtgate.sources.postgres import PostgresSource, PostgresSourceSection
    from debtgate.validate import Policy

    nft = NftAdapter()
    await nft.load_ruleset(render_ruleset(read_template(DEFAULT_RULESET), portal_v4="10.255.255.1",
                                          portal_v6=None, portal_port=8080, portal_tls_port=8443))
    engine = Engine(nft, NullCutter(), Policy(min_prefix_v4=8))
    await engine.adopt_kernel()
    source = PostgresSource(PostgresSourceSection(dsn=dsn, resync_interval=3600))
    out: dict[str, object] = {"subscribers": n}
    started = time.perf_counter()
    task = asyncio.create_task(source.run(engine.handle))
    while not engine.stats.synced:
        await asyncio.sleep(0.01)
    out["cold_sync_s"] = round(time.perf_counter() - started, 3)
    out["cold_apply_s"] = round(engine.stats.last_apply_seconds, 3)
    out["blocked_elements"] = len(engine.committed["blocked_v4_host"])
    out["rss_after_cold_mb"] = round(rss_mb(), 1)
    # No-op resync.
    writes = engine.stats.kernel_writes
    mark = source.health.last_snapshot
    started = time.perf_counter()
    source.request_resync()
    while source.health.last_snapshot == mark:
        await asyncio.sleep(0.005)
    out["noop_resync_s"] = round(time.perf_counter() - started, 3)
    out["noop_resync_kernel_writes"] = engine.stats.kernel_writes - writes
    out["rss_after_resync_mb"] = round(rss_mb(), 1)
    task.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(inner(args.inner, args.subscribers))))
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
        blocked = [address_of(i) for i in range(10, n + 1, 10)]
        kernel_floor = nft_floor(blocked, ns)
        proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__,
                               "--subscribers", str(n), "--inner", server.socket_dsn],
                              capture_output=True, text=True, check=True)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["floor_fetch_s"] = round(fetch_floor, 3)
        result["floor_nft_s"] = round(kernel_floor, 3)
        floor = fetch_floor + kernel_floor
        result["floor_s"] = round(floor, 3)
        result["cold_sync_ratio"] = round(float(result["cold_sync_s"]) / floor, 2)
        print(json.dumps(result, indent=1))
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
        server.cleanup()


if __name__ == "__main__":
    main()
