"""Pacing: a NAS configured at 500 requests/s, 20,000 requests queued at once.

The NAS is an in-process UDP responder (pyrad packets) that timestamps each
request's arrival. Reported: achieved rate over the whole run, its deviation
from the configured rate, and the worst 1-second window.

Usage: .venv/bin/python bench/radius_pacing.py [--count 20000] [--rate 500] [--burst 20]
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration" / "radius"))

from fakenas import Answer, FakeNas  # noqa: E402

from debtgate.config.radius import RadiusConfig  # noqa: E402
from debtgate.model import Session, State  # noqa: E402
from debtgate.radius.dispatcher import CoaDispatcher, Intent  # noqa: E402
from debtgate.radius.packets import load_dictionary  # noqa: E402

SECRET = "bench-secret"


async def run(count: int, rate: float, burst: int) -> dict[str, object]:
    arrivals: list[float] = []

    def policy(pkt: object, seen: int) -> Answer:
        if seen == 1:
            arrivals.append(time.monotonic())
        return Answer()

    nas = FakeNas(SECRET.encode(), load_dictionary(), policy)
    port = await nas.start()
    with tempfile.TemporaryDirectory() as tmp:
        secret = Path(tmp) / "secret"
        secret.write_text(SECRET)
        config = RadiusConfig.model_validate({"enabled": True, "nas": [{
            "name": "paced", "address": "127.0.0.1", "port": port,
            "secret_file": str(secret), "profile": "cisco-isg", "rate": rate, "burst": burst,
            "max_in_flight": 256, "timeout": 3}]})
        dispatcher = CoaDispatcher(config)
    task = asyncio.create_task(dispatcher.run())
    for i in range(count):
        dispatcher.submit(Intent(f"acc{i}", State.BLOCKED, Session(session_id=f"s{i}")))
    queued = dispatcher.status()["nas"]["paced"]
    while len(arrivals) < count:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    status = dispatcher.status()["nas"]["paced"]
    dispatcher.close()
    await task
    nas.close()
    t0 = arrivals[0]
    span = arrivals[-1] - t0
    # the first `burst` requests leave at once by design; the steady rate excludes them
    steady = (count - burst) / (arrivals[-1] - arrivals[burst - 1]) if burst else count / span
    per_second = Counter(math.floor(t - t0) for t in arrivals[burst:])
    full = [per_second[s] for s in range(1, max(per_second))]  # whole seconds only
    worst = max(full, key=lambda n: abs(n - rate)) if full else None
    return {
        "bench": "radius_pacing", "count": count, "rate_configured": rate, "burst": burst,
        "seconds": round(span, 3),
        "rate_achieved_overall": round(count / span, 2),
        "rate_achieved_steady": round(steady, 2),
        "deviation_pct": round(100 * (steady - rate) / rate, 3),
        "worst_1s_window": worst,
        "worst_1s_deviation_pct": round(100 * (worst - rate) / rate, 2) if worst else None,
        "eta_s_when_queued": queued["eta_s"], "queue_depth_when_queued": queued["queue_depth"],
        "ack": status["ack"], "retransmits": status["retransmits"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--burst", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.count, args.rate, args.burst)), indent=2))


if __name__ == "__main__":
    main()
