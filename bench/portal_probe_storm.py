"""Probe storm (issue 4): 10,000 devices' OS detection probes hit the portal while the
daemon keeps applying billing changes. Does the storm slow enforcement down?

    sudo .venv/bin/python bench/portal_probe_storm.py [--addresses 10000] [--rounds 3]

Everything runs in a throwaway network namespace (its own loopback, its own nftables):

* daemon side (core 1): the real ``Engine`` with the real nft adapter and the shipped
  ruleset, holding 10,000 blocked subscribers (10.1.x.y) plus 200 accounts it keeps
  toggling, serving the portal API on a Unix socket exactly as ``debtgate run`` does.
  A loop applies one ``Delta`` (one account blocked or unblocked: validation, plan,
  one nft transaction) every 20 ms and times ``engine.handle``.
* portal (core 0): ``debtgate portal`` with one worker and default rate limits.
* storm (core 0, with the portal): one client per source address 127.1.x.y (the
  loopback address stands for subscriber 10.1.x.y: the daemon's backend maps it, since
  the engine rightly refuses loopback addresses), each sending the probes a phone or
  laptop sends on joining a network (Android generate_204, Apple hotspot-detect,
  Windows connecttest), ``Connection: close`` as DNATed requests get, 256 at a time,
  ``--rounds`` times over all addresses.

The daemon core is kept free of the storm's client and portal CPU, as on a gateway
where the portal does not share the daemon's core: the question is whether the
portal's questions to the daemon (view lookups) disturb enforcement. Apply latency
p50/p99 is reported before (baseline), during and after the storm. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBES = (
    b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
    b"User-Agent: Dalvik/2.1.0\r\nConnection: close\r\n\r\n",
    b"GET /hotspot-detect.html HTTP/1.1\r\nHost: captive.apple.com\r\n"
    b"User-Agent: CaptiveNetworkSupport\r\nConnection: close\r\n\r\n",
    b"GET /connecttest.txt HTTP/1.1\r\nHost: www.msftconnecttest.com\r\n"
    b"User-Agent: Microsoft NCSI\r\nConnection: close\r\n\r\n",
)


def storm_address(i: int) -> str:
    return f"127.1.{i // 250}.{i % 250 + 1}"


def subscriber_address(i: int) -> str:
    return f"10.1.{i // 250}.{i % 250 + 1}"


# -- daemon side -------------------------------------------------------------

async def daemon(sock: str, n: int, out: str) -> None:
    from debtgate.adapters.conntrack import NullCutter
    from debtgate.adapters.nft import NftAdapter, read_template, render_ruleset
    from debtgate.config import DEFAULT_RULESET
    from debtgate.engine import Engine
    from debtgate.portal_api import make_portal_api, serve_unix
    from debtgate.sources.base import Delta, Snapshot
    from debtgate.validate import Policy

    nft = NftAdapter()
    await nft.load_ruleset(render_ruleset(read_template(DEFAULT_RULESET), portal_v4="10.255.255.1",
                                          portal_v6=None, portal_port=8080,
                                          portal_tls_port=8443))
    engine = Engine(nft, NullCutter(), Policy(min_prefix_v4=8))
    await engine.adopt_kernel()
    rows = [{"account": f"s{i}", "addresses": [subscriber_address(i)], "state": "blocked",
             "amount_due": "1250.00", "currency": "RUB", "since": "2026-11-01"}
            for i in range(n)]
    toggled = 200
    rows += [{"account": f"t{i}", "addresses": [f"10.2.{i // 250}.{i % 250 + 1}"],
              "state": "active"} for i in range(toggled)]
    await engine.handle(Snapshot(rows))

    class Backend:  # 127.1.x.y stands for 10.1.x.y
        def view(self, ip: str) -> dict[str, object] | None:
            if ip.startswith("127.1."):
                ip = "10.1." + ip[6:]
            return engine.view(ip)

        async def acknowledge(self, ip: str) -> dict[str, object] | None:
            return await engine.acknowledge(ip)

    runner = await serve_unix(make_portal_api(Backend()), sock)
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    k = 0
    while not stop.is_set():
        i = k % toggled
        state = "blocked" if (k // toggled) % 2 == 0 else "active"
        delta = Delta([{"account": f"t{i}", "addresses": [f"10.2.{i // 250}.{i % 250 + 1}"],
                        "state": state, "amount_due": "10" if state == "blocked" else "0"}])
        started = time.monotonic()
        await engine.handle(delta)
        samples.append((started, time.monotonic() - started))
        k += 1
        try:
            await asyncio.wait_for(stop.wait(), 0.02)
        except TimeoutError:
            pass
    Path(out).write_text(json.dumps({"samples": samples, "views": engine.portal_views,
                                     "kernel_writes": engine.stats.kernel_writes}))
    await runner.cleanup()


# -- the storm -----------------------------------------------------------------

async def storm(port: int, n: int, rounds: int, concurrency: int) -> dict[str, object]:
    import uvloop

    uvloop.install()
    latencies: list[float] = []
    codes: dict[str, int] = {}
    errors = 0
    jobs = [(storm_address(i), PROBES[(i + r) % len(PROBES)])
            for r in range(rounds) for i in range(n)]
    queue = iter(jobs)

    async def worker() -> None:
        nonlocal errors
        for source, probe in queue:
            started = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, local_addr=(source, 0))
                writer.write(probe)
                data = await asyncio.wait_for(reader.read(), 10)
                writer.close()
            except (OSError, TimeoutError):
                errors += 1
                continue
            latencies.append(time.monotonic() - started)
            code = data[9:12].decode("ascii", "replace")
            codes[code] = codes.get(code, 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took = time.monotonic() - started
    latencies.sort()
    return {"requests": len(jobs), "seconds": round(took, 2),
            "rps": round(len(latencies) / took), "codes": codes, "errors": errors,
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2)
            if latencies else None}


PORTAL_SIDE = r'''
import sys
from debtgate.portal.config import PortalConfig
from debtgate.portal.server import run_portal
cfg = PortalConfig.model_validate({
    "listen": "127.0.0.1", "port": int(sys.argv[2]), "public_url": "http://10.255.255.1:8080/",
    "daemon_socket": sys.argv[1],
    "sbp_template": "https://qr.nspk.ru/AS1000?type=02&sum={amount_kopecks}&cur=RUB&payee={account}",
})
sys.exit(run_portal(cfg, 1))
'''


def stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"applies": 0, "p50_ms": None, "p99_ms": None}
    ordered = sorted(values)
    return {"applies": len(ordered),
            "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def inner(args: argparse.Namespace) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="debtgate-storm-"))
    sock, out, port = str(tmp / "portal.sock"), str(tmp / "applies.json"), 18090
    env = dict(os.environ)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(["taskset", "-c", "1", sys.executable, __file__,
                                       "--daemon", sock, out, str(args.addresses)], env=env))
        for _ in range(600):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("daemon did not come up")
        procs.append(subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", PORTAL_SIDE,
                                       sock, str(port)], env=env))
        time.sleep(1.5)
        time.sleep(args.baseline)
        storm_start = time.monotonic()
        result = subprocess.run(["taskset", "-c", "0", sys.executable, __file__, "--storm",
                                 str(port), str(args.addresses), str(args.rounds)],
                                capture_output=True, text=True, check=True, env=env)
        storm_end = time.monotonic()
        time.sleep(args.baseline)
        procs[0].send_signal(signal.SIGTERM)
        procs[0].wait(30)
        data = json.loads(Path(out).read_text())
        base_start = storm_start - args.baseline
        before = [d for t, d in data["samples"] if base_start <= t < storm_start]
        during = [d for t, d in data["samples"] if storm_start <= t < storm_end]
        after = [d for t, d in data["samples"] if t >= storm_end]
        print(json.dumps({
            "addresses": args.addresses, "rounds": args.rounds,
            "storm": json.loads(result.stdout),
            "daemon_views_served": data["views"],
            "apply_latency": {"baseline": stats(before), "during_storm": stats(during),
                              "after": stats(after)},
            "target": "apply p99 during the storm <= baseline p99 (+ noise)",
        }, indent=2))
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--daemon":
        asyncio.run(daemon(sys.argv[2], int(sys.argv[4]), sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--storm":
        port, n, rounds = (int(x) for x in sys.argv[2:5])
        print(json.dumps(asyncio.run(storm(port, n, rounds, 256))))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--addresses", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", type=float, default=8.0, help="seconds before/after")
    ap.add_argument("--inner", action="store_true")
    args = ap.parse_args()
    if args.inner:
        inner(args)
        return
    ns = f"dgstorm{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        cmd = ["ip", "netns", "exec", ns, sys.executable, __file__, "--inner",
               "--addresses", str(args.addresses), "--rounds", str(args.rounds),
               "--baseline", str(args.baseline)]
        sys.exit(subprocess.run(cmd, check=False).returncode)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


if __name__ == "__main__":
    main()
