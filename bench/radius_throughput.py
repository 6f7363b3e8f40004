"""CoA throughput: debtgate's dispatcher vs radclient -p 256, same 10,000 requests, same NAS.

The NAS is a local FreeRADIUS (CoA listener, ACK for every bench-* session,
Message-Authenticator required) started from a temp dir. Both clients send the
same CoA-Request (NAS-IP-Address, Acct-Session-Id, Mikrotik-Address-List,
Event-Timestamp, Message-Authenticator) with 256 requests in flight.

Usage: .venv/bin/python bench/radius_throughput.py [--count 10000] [--loop asyncio|uvloop]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "radius"))

from debtgate.model import Session, State  # noqa: E402
from debtgate.radius.config import RadiusConfig  # noqa: E402
from debtgate.radius.dispatcher import CoaDispatcher, Intent  # noqa: E402
from freeradius import FreeRadius, free_udp_port  # noqa: E402

SECRET = "bench-secret"


async def run_debtgate(port: int, count: int, tmp: Path, in_flight: int) -> dict[str, float]:
    secret = tmp / "secret"
    secret.write_text(SECRET)
    config = RadiusConfig.model_validate({"enabled": True, "nas": [{
        "name": "bench", "address": "127.0.0.1", "port": port, "secret_file": str(secret),
        "profile": "mikrotik", "rate": 1e9, "burst": count, "max_in_flight": in_flight,
        "timeout": 5, "retries": 3}]})
    dispatcher = CoaDispatcher(config)
    worker = dispatcher.workers["bench"]
    task = asyncio.create_task(dispatcher.run())
    start = time.perf_counter()
    for i in range(count):
        dispatcher.submit(Intent(f"acc{i}", State.BLOCKED, Session(session_id=f"bench-{i}")))
    while worker.stats.ack + worker.stats.timeouts + sum(worker.stats.nak.values()) < count:
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    status = worker.status()
    dispatcher.close()
    await task
    return {"seconds": round(elapsed, 3), "rps": round(count / elapsed, 1),
            "ack": status["ack"], "retransmits": status["retransmits"],
            "timeouts": status["timeouts"], "latency_p99_ms": status["latency_p99_ms"]}


def run_radclient(port: int, count: int, tmp: Path, parallel: int) -> dict[str, float]:
    requests = tmp / "requests.txt"
    stamp = int(time.time())
    with requests.open("w") as f:
        for i in range(count):
            f.write(f'NAS-IP-Address = 127.0.0.1\nAcct-Session-Id = "bench-r{i}"\n'
                    f'Mikrotik-Address-List = "debtgate-blocked"\nEvent-Timestamp = {stamp}\n'
                    "Message-Authenticator = 0x00\n\n")
    args = ["radclient", "-q", "-s", "-p", str(parallel), "-r", "3", "-t", "5",
            "-f", str(requests), f"127.0.0.1:{port}", "coa", SECRET]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    return {"seconds": round(elapsed, 3), "rps": round(count / elapsed, 1),
            "exit": proc.returncode, "summary": " ".join(proc.stdout.split())[-200:]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=256)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--threads", type=int, default=4, help="FreeRADIUS worker threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fr = FreeRadius(tmp / "fr", SECRET, free_udp_port(), [], debug=False,
                        threads=args.threads, known_pattern="bench-.*")
        fr.start()
        try:
            run_radclient(fr.port, 500, tmp, args.parallel)  # warm-up
            radclient = run_radclient(fr.port, args.count, tmp, args.parallel)
            if args.loop == "uvloop":
                import uvloop

                ours = uvloop.run(run_debtgate(fr.port, args.count, tmp, args.parallel))
            else:
                ours = asyncio.run(run_debtgate(fr.port, args.count, tmp, args.parallel))
        finally:
            fr.stop()
    print(json.dumps({
        "bench": "radius_throughput", "count": args.count, "in_flight": args.parallel,
        "loop": args.loop, "debtgate": ours, "radclient": radclient,
        "ratio": round(ours["rps"] / radclient["rps"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
