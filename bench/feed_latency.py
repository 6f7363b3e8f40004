"""Payment latency: billing COMMIT -> the subscriber's next packet passes (prints JSON).

Run as root:  .venv/bin/python bench/feed_latency.py [--subscribers 1000000] [--trials 200]

A throwaway PostgreSQL with the reference schema holds N subscribers; account
``acc10`` is given the address of a subscriber host of a network-namespace
topology (``debtgate.netlab``: gateway, subscriber ``sub``, upstream ``up``).
In the gateway namespace the daemon's enforcement core runs: the shipped
ruleset loaded by the real nft adapter and an Engine fed by the PostgresSource
(``[source] kind = "postgres"``, coalesce_ms = 20, the default). In the
subscriber namespace a prober connects to a TCP port upstream every 0.5 ms and
reports each change between refused (blocked: the ruleset resets the SYN) and
connected, with CLOCK_MONOTONIC timestamps (one clock across namespaces).

Each trial: block acc10 (UPDATE, wait until the prober is refused), then
``INSERT INTO payments`` in autocommit; the clock starts when the INSERT is
sent (so a trial also counts the statement and its commit) and stops at the
prober's first successful connect.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from feed_common import billing, rss_mb, start_daemon  # noqa: E402

SUB_V4 = "100.64.1.10"
UP_V4 = "198.18.0.10"
PORT = 8000

PROBE = f"""
import socket, sys, time
ok = None
while True:
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("{UP_V4}", {PORT}))
        now = True
    except OSError:
        now = False
    finally:
        s.close()
    if now != ok:
        ok = now
        sys.stdout.write(("ok " if ok else "fail ") + repr(time.monotonic()) + "\\n")
        sys.stdout.flush()
    time.sleep(0.0005)
"""

LISTEN = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{UP_V4}", {PORT})); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
"""


async def daemon(dsn: str) -> None:
    engine, source = await start_daemon(dsn, guard=True)
    task = asyncio.create_task(source.run(engine.handle))  # type: ignore[attr-defined]
    while not engine.stats.synced:  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
    print(json.dumps({"ready": True, "rss_mb": round(rss_mb(), 1)}), flush=True)
    await task


async def trials(dsn: str, probe: asyncio.subprocess.Process, count: int) -> list[float]:
    import asyncpg

    assert probe.stdout is not None
    conn = await asyncpg.connect(dsn)
    state: dict[str, float | bool] = {}

    async def until(want: bool, after: float, timeout: float = 10.0) -> float:
        while True:
            if state.get("ok") is want and float(state.get("at", 0.0)) >= after:
                return float(state["at"])
            line = await asyncio.wait_for(probe.stdout.readline(), timeout)  # type: ignore[union-attr]
            kind, at = line.decode().split()
            state["ok"], state["at"] = kind == "ok", float(at)

    # The prober's first line is the state it found (acc10 starts blocked): an UPDATE
    # that keeps it blocked changes nothing the prober could report.
    line = await asyncio.wait_for(probe.stdout.readline(), 30)
    kind, at = line.decode().split()
    state["ok"], state["at"] = kind == "ok", float(at)
    out = []
    for _ in range(count):
        mark = time.monotonic()
        await conn.execute("UPDATE accounts SET state = 'blocked', balance = -500,"
                           " since = current_date WHERE id = 'acc10'")
        if state.get("ok") is not False:
            await until(False, mark)
        await asyncio.sleep(0.02)
        sent = time.monotonic()
        await conn.execute("INSERT INTO payments (account_id, amount) VALUES ('acc10', 500)")
        passed = await until(True, sent)
        out.append(passed - sent)
    await conn.close()
    return out


async def outer(n: int, count: int) -> dict[str, object]:
    from debtgate.netlab import Topology

    server = billing(n)
    server.psql("SET session_replication_role = replica;"
                f"UPDATE accounts SET address_list = '{SUB_V4}' WHERE id = 'acc10'")
    topo = Topology()
    procs: list[asyncio.subprocess.Process] = []
    try:
        topo.build_gateway()
        topo.add_host("sub", v4=[SUB_V4], v6=[])
        topo.add_host("up", v4=[UP_V4], v6=[], upstream=True)
        listen = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", topo._ns("up"), sys.executable, "-c", LISTEN)  # noqa: SLF001
        procs.append(listen)
        started = time.perf_counter()
        gw = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", topo.gw, sys.executable, __file__, "--subscribers", str(n),
            "--inner", server.socket_dsn, stdout=subprocess.PIPE)
        procs.append(gw)
        assert gw.stdout is not None
        ready = json.loads(await asyncio.wait_for(gw.stdout.readline(), 600))
        cold = time.perf_counter() - started
        probe = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", topo._ns("sub"), sys.executable, "-c", PROBE,  # noqa: SLF001
            stdout=subprocess.PIPE)
        procs.append(probe)
        lat = sorted(await trials(server.socket_dsn, probe, count))
        q = statistics.quantiles(lat, n=100, method="inclusive")
        return {"subscribers": n, "trials": len(lat), "daemon_ready_s": round(cold, 1),
                "daemon_rss_mb": ready.get("rss_mb"),
                "p50_ms": round(statistics.median(lat) * 1000, 1),
                "p90_ms": round(q[89] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
                "max_ms": round(lat[-1] * 1000, 1), "min_ms": round(lat[0] * 1000, 1)}
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        topo.teardown()
        server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--inner", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        asyncio.run(daemon(args.inner))
        return
    print(json.dumps(asyncio.run(outer(args.subscribers, args.trials)), indent=1))


if __name__ == "__main__":
    main()
