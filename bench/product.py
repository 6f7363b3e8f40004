"""Benchmarks of the shipped product: ``debtgate run`` against PostgreSQL, from outside.

    sudo .venv/bin/python bench/product.py --all [--subscribers 1000000] [--write-docs]

One lab (``product_lab``): a throwaway PostgreSQL with the reference schema and N
subscribers (N/10 blocked), network namespaces, the daemon started from its console
script with a config file, TCP probers in the subscriber namespace. In this order:
floors (``nft -f`` of the same elements, ``psql`` of the same rows), first start (b),
full resyncs (d), quiet payments (a), payments during full resyncs (a), storms with
payments in their first 2 s (c, a, e), restart and the periodic resync (b, d), reboot
(b). Prints the JSON; ``--write-docs`` rewrites the product table of
docs/BENCHMARKS.md (``product_docs``). ``--quick`` takes few trials and ``--only``
some scenarios after the first start (development).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from product_billing import (  # noqa: E402
    RESTRICTED_COPY,
    psql_seconds,
    restricted_addresses,
    storm_addresses,
)
from product_docs import write_docs  # noqa: E402
from product_lab import Lab, open_lab, summary  # noqa: E402
from product_latency import during_resync, quiet, resync_once  # noqa: E402
from product_net import nft_floor  # noqa: E402
from product_starts import first_start, reboot, restart  # noqa: E402
from product_storm import storms  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("resync", "quiet", "during_resync", "storm", "restart", "reboot")


def floors(lab: Lab) -> dict[str, Any]:
    restricted = nft_floor(lab.gw, restricted_addresses(lab.plan))
    storm = nft_floor(lab.gw, storm_addresses(lab.plan))
    fetch = psql_seconds(lab.server, RESTRICTED_COPY)
    return {"nft_restricted": restricted, "nft_storm": storm,
            "psql_fetch_restricted_s": round(fetch, 3),
            "first_start_s": round(fetch + restricted["median_s"], 3)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    lab = await open_lab(args.subscribers)
    out: dict[str, Any] = {}
    def keep() -> None:  # what is measured so far survives an interrupted run
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))

    def wanted(name: str) -> bool:
        return not args.only or name in args.only

    try:
        await lab.connect()
        out["floors"] = floors(lab)
        out["first_start"] = await first_start(lab)  # every other scenario needs it
        keep()
        if wanted("resync") or wanted("during_resync"):
            out["resync"] = [await resync_once(lab) for _ in range(args.resyncs)]
            keep()
        if wanted("quiet"):
            out["quiet"] = await quiet(lab, args.quiet)
            keep()
        if wanted("during_resync"):
            took = statistics.median(r["seen_s"] or 1.0 for r in out["resync"])
            out["during_resync"] = await during_resync(lab, args.resync, took,
                                                       max_rounds=args.max_rounds)
            keep()
        if wanted("storm"):
            await lab.daemon.reload(guard=False)  # the storm is 10 %: the guard holds it
            out["storm"] = await storms(lab, args.storm, max_rounds=args.max_rounds + 1)
            keep()
        if wanted("restart"):
            out["restart"] = await restart(lab)
            keep()
        if wanted("reboot"):
            out["reboot"] = await reboot(lab)
    finally:
        if args.log and lab.daemon.log.exists():
            args.log.write_bytes(lab.daemon.log.read_bytes())
        await lab.close()
    if args.only:
        return out
    groups = [out["quiet"], out["storm"]["payments"], out["during_resync"]]
    out["payments_overall"] = summary([x for g in groups for x in g["latencies_s"]])
    return out


def meta(args: argparse.Namespace) -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True,
                              check=False).stdout.strip()

    nft = subprocess.run(["nft", "--version"], capture_output=True, text=True,
                         check=False).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "src")),
            "subscribers": args.subscribers, "blocked": args.subscribers // 10,
            "machine": f"{os.cpu_count()} cores, Linux {platform.release()}, {nft}, "
                       f"Python {platform.python_version()}",
            "load_before": os.getloadavg()[0],
            "command": "bench/product.py " + " ".join(sys.argv[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="every scenario (the default)")
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--quiet", type=int, default=150, help="quiet payment trials")
    parser.add_argument("--storm", type=int, default=100, help="payment trials in storms")
    parser.add_argument("--resync", type=int, default=50, help="payment trials in resyncs")
    parser.add_argument("--resyncs", type=int, default=3, help="full resyncs timed alone")
    parser.add_argument("--max-rounds", type=int, default=40,
                        help="most resync and storm rounds for the payment trials")
    parser.add_argument("--quick", action="store_true", help="10 trials of each kind")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=[],
                        help="these scenarios after the first start (development; "
                             "not with --write-docs)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--log", type=Path, help="keep the daemon's log here")
    args = parser.parse_args()
    if args.only and args.write_docs:
        parser.error("--write-docs needs every scenario")
    if args.quick:
        args.quiet = args.storm = args.resync = 10
    info = meta(args)
    result = {"meta": info, **asyncio.run(run(args))}
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)
    if args.write_docs:
        write_docs(ROOT / "docs" / "BENCHMARKS.md", result)


if __name__ == "__main__":
    main()
