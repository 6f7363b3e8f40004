"""CoA throughput: debtgate's dispatcher vs radclient -p 256, same 10,000 requests, same NAS.

The NAS is a local FreeRADIUS (CoA listener, ACK for every bench-* session,
Message-Authenticator required) started from a temp dir, with a 4 MiB socket
receive buffer (``recv_buff``; ``--recv-buff 0`` for the kernel default) so
that a burst of 256 datagrams is not dropped before FreeRADIUS reads it (a
drop costs either client a whole retransmission timeout). Both clients send
the same CoA-Request (NAS-IP-Address, Acct-Session-Id, Mikrotik-Address-List,
Event-Timestamp, Message-Authenticator) with 256 requests in flight and the
same retransmission policy (5 s, 3 retries).

After a warm-up of each, the two clients run alternately ``--runs`` times;
medians are reported. radclient's time includes its process start (reading the
FreeRADIUS dictionaries), measured separately with a 1-request file and also
reported subtracted (``rps_net``); debtgate's time runs from the first submit()
to the last result recorded (the dispatcher is built before: dictionaries,
profiles, secret). The headline ratio uses radclient's net figure (the stricter
comparison); ``ratio_gross`` uses its wall time.

Usage: .venv/bin/python bench/radius_throughput.py [--count 10000] [--runs 5]
       [--loop asyncio|uvloop] [--recv-buff BYTES]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "radius"))

from freeradius import FreeRadius, free_udp_port  # noqa: E402

from debtgate.config.radius import RadiusConfig  # noqa: E402
from debtgate.model import Session, State  # noqa: E402
from debtgate.radius.dispatcher import CoaDispatcher, Intent  # noqa: E402

SECRET = "bench-secret"


async def run_debtgate(port: int, count: int, tmp: Path, in_flight: int,
                       tag: str = "") -> dict[str, Any]:
    secret = tmp / "secret"
    secret.write_text(SECRET)
    config = RadiusConfig.model_validate({"enabled": True, "nas": [{
        "name": "bench", "address": "127.0.0.1", "port": port, "secret_file": str(secret),
        "profile": "mikrotik", "rate": 1e9, "burst": count, "max_in_flight": in_flight,
        "timeout": 5, "retries": 3}]})
    dispatcher = CoaDispatcher(config)
    worker = dispatcher.workers["bench"]
    finished = asyncio.Event()
    recorded = [0, 0.0]
    record = worker._record

    def counting(account: str, result: dict[str, Any]) -> None:
        record(account, result)
        recorded[0] += 1
        if recorded[0] == count:
            recorded[1] = time.perf_counter()
            finished.set()

    worker._record = counting
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0)
    cpu = time.process_time()
    start = time.perf_counter()
    for i in range(count):
        dispatcher.submit(Intent(f"acc{i}", State.BLOCKED, Session(session_id=f"bench-{tag}{i}")))
    await finished.wait()
    elapsed = recorded[1] - start
    cpu = time.process_time() - cpu
    status = worker.status()
    dispatcher.close()
    await task
    return {"seconds": round(elapsed, 4), "rps": round(count / elapsed, 1),
            "cpu_us_per_request": round(cpu / count * 1e6, 1), "ack": status["ack"],
            "retransmits": status["retransmits"],
            "timeouts": status["timeouts"], "latency_p99_ms": status["latency_p99_ms"]}


def write_requests(path: Path, count: int, tag: str) -> None:
    stamp = int(time.time())
    with path.open("w") as f:
        for i in range(count):
            f.write(f'NAS-IP-Address = 127.0.0.1\nAcct-Session-Id = "bench-{tag}{i}"\n'
                    f'Mikrotik-Address-List = "debtgate-blocked"\nEvent-Timestamp = {stamp}\n'
                    "Message-Authenticator = 0x00\n\n")


def run_radclient(port: int, requests: Path, count: int, parallel: int) -> dict[str, Any]:
    args = ["radclient", "-q", "-s", "-p", str(parallel), "-r", "3", "-t", "5",
            "-f", str(requests), f"127.0.0.1:{port}", "coa", SECRET]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = " ".join(proc.stdout.split())
    return {"seconds": round(elapsed, 4), "rps": round(count / elapsed, 1),
            "cpu_us_per_request": round(cpu / count * 1e6, 1), "exit": proc.returncode,
            "accepted": _field(summary, "Accepted"),
            "lost": _field(summary, "Lost")}


def _field(summary: str, name: str) -> int | None:
    words = summary.split()
    for i, word in enumerate(words[:-2]):
        if word == name and words[i + 1] == ":":
            return int(words[i + 2])
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--threads", type=int, default=4, help="FreeRADIUS worker threads")
    parser.add_argument("--recv-buff", type=int, default=1 << 22,
                        help="FreeRADIUS CoA socket receive buffer (0: kernel default)")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        runner: Any = uvloop.run
    else:
        runner = asyncio.run
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fr = FreeRadius(tmp / "fr", SECRET, free_udp_port(), [], debug=False,
                        threads=args.threads, known_pattern="bench-.*",
                        recv_buff=args.recv_buff or None)
        fr.start()
        try:
            one, warm = tmp / "one.txt", tmp / "warm.txt"
            write_requests(one, 1, "s")
            write_requests(warm, 500, "w")
            run_radclient(fr.port, warm, 500, args.parallel)  # warm-up
            runner(run_debtgate(fr.port, 500, tmp, args.parallel, "w"))
            startup = statistics.median(
                run_radclient(fr.port, one, 1, 1)["seconds"] for _ in range(5))
            for run in range(args.runs):
                requests = tmp / f"requests{run}.txt"
                write_requests(requests, args.count, f"r{run}-")
                theirs.append(run_radclient(fr.port, requests, args.count, args.parallel))
                ours.append(runner(run_debtgate(fr.port, args.count, tmp, args.parallel,
                                                f"d{run}-")))
        finally:
            fr.stop()
    ours_s = statistics.median(r["seconds"] for r in ours)
    theirs_s = statistics.median(r["seconds"] for r in theirs)
    net_s = theirs_s - startup
    print(json.dumps({
        "bench": "radius_throughput", "count": args.count, "in_flight": args.parallel,
        "loop": args.loop, "runs": args.runs, "recv_buff": args.recv_buff,
        "debtgate": {"median_seconds": ours_s, "rps": round(args.count / ours_s, 1),
                     "cpu_us_per_request": statistics.median(
                         r["cpu_us_per_request"] for r in ours), "runs": ours},
        "radclient": {"median_seconds": theirs_s, "rps": round(args.count / theirs_s, 1),
                      "startup_seconds": round(startup, 4),
                      "rps_net": round(args.count / net_s, 1),
                      "cpu_us_per_request": statistics.median(
                          r["cpu_us_per_request"] for r in theirs), "runs": theirs},
        "ratio": round(net_s / ours_s, 2),
        "ratio_gross": round(theirs_s / ours_s, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
