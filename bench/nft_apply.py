"""Enforcement components (issue 2), ratios against `nft -f` floors measured in the same run.

    sudo .venv/bin/python bench/nft_apply.py [--size 1000000] [--delta 1000] [--load 100000]

Runs in a throwaway network namespace (its own kernel tables). Prints JSON. These time
the nft adapter alone (no engine, no daemon); the daemon's own figures (a storm, a full
load at start) come from ``bench/product.py``, which runs ``debtgate run``.
1. delta: a set holding SIZE addresses; a change of DELTA addresses (half added, half
   removed) through debtgate's path (pure reconcile scoped to the change -> one libnftables
   transaction) vs `nft -f` of the same delta written by hand.
2. apply: `NftAdapter.apply` alone of a plan adding LOAD IPv4 hosts into an empty set (the
   netlink fast path; libnftables as well, for comparison) vs `nft -f` of the same elements,
   median of ROUNDS, each into a freshly loaded table.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULESET = ROOT / "nft-rules" / "debtgate.nft"


def addrs(n: int, base: str = "10.0.0.0") -> list[str]:
    start = int(ipaddress.IPv4Address(base))
    return [str(ipaddress.IPv4Address(start + i)) for i in range(n)]


def nft_f(script: str) -> float:
    started = time.perf_counter()
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)
    return time.perf_counter() - started


def reset() -> None:
    subprocess.run(["nft", "delete", "table", "inet", "debtgate"], capture_output=True,
                   check=False)
    subprocess.run(["nft", "-f", str(RULESET)], check=True)


def fill(elements: list[str], name: str = "blocked_v4_host") -> None:
    for i in range(0, len(elements), 200_000):
        chunk = ", ".join(elements[i:i + 200_000])
        subprocess.run(["nft", "-f", "-"], text=True, check=True,
                       input=f"add element inet debtgate {name} {{ {chunk} }}\n")


def bench_delta(size: int, delta: int, rounds: int) -> dict[str, object]:
    from debtgate.core.reconcile import commit, reconcile
    from debtgate.kernel.nft import NftAdapter

    base = addrs(size)
    extra = addrs(delta // 2, "11.0.0.0")
    reset()
    fill(base)
    floors, ours = [], []
    adapter = NftAdapter()
    committed = {"blocked_v4_host": set(base)}
    desired = {"blocked_v4_host": set(base)}
    for r in range(rounds):
        removed = base[r * (delta // 2):(r + 1) * (delta // 2)]
        # floor: the same delta by hand (add new, delete old; known to exist)
        script = (f"add element inet debtgate blocked_v4_host {{ {', '.join(extra)} }}\n"
                  f"delete element inet debtgate blocked_v4_host {{ {', '.join(removed)} }}\n")
        floors.append(nft_f(script))
        nft_f(f"add element inet debtgate blocked_v4_host {{ {', '.join(removed)} }}\n"
              f"delete element inet debtgate blocked_v4_host {{ {', '.join(extra)} }}\n")
        # debtgate: pure plan over the touched elements, one transaction
        started = time.perf_counter()
        desired["blocked_v4_host"].difference_update(removed)
        desired["blocked_v4_host"].update(extra)
        plan = reconcile(desired, committed, datetime.now(UTC), scope=set(removed) | set(extra))
        asyncio.run(adapter.apply(plan))
        commit(committed, plan)
        ours.append(time.perf_counter() - started)
        assert plan.writes == delta
        # put it back for the next round (not timed)
        desired["blocked_v4_host"].update(removed)
        desired["blocked_v4_host"].difference_update(extra)
        plan = reconcile(desired, committed, datetime.now(UTC), scope=set(removed) | set(extra))
        asyncio.run(adapter.apply(plan))
        commit(committed, plan)
    floor, mine = statistics.median(floors), statistics.median(ours)
    return {"set_size": size, "delta": delta, "rounds": rounds, "floor_nft_f_s": round(floor, 4),
            "debtgate_s": round(mine, 4), "ratio": round(mine / floor, 2), "target": "<= 1.5"}


def bench_apply(n: int, rounds: int) -> dict[str, object]:
    from debtgate.core.reconcile import Plan, SetDelta
    from debtgate.kernel.nft import NftAdapter

    elems = addrs(n, "100.64.0.0")
    script = f"add element inet debtgate blocked_v4_host {{ {', '.join(elems)} }}\n"
    plan = Plan(datetime.now(UTC), (SetDelta("blocked_v4_host", tuple(elems)),))
    fast, lib = NftAdapter(), NftAdapter(fast=False)
    assert fast.fast is not None, "netlink fast path unavailable"
    floors, ours, libs = [], [], []
    for _ in range(rounds):
        for adapter, times in ((None, floors), (fast, ours), (lib, libs)):
            reset()
            started = time.perf_counter()
            if adapter is None:
                nft_f(script)
            else:
                asyncio.run(adapter.apply(plan))
            times.append(time.perf_counter() - started)
    assert fast.fast.applied == rounds
    floor, mine, via_lib = (statistics.median(t) for t in (floors, ours, libs))
    return {"hosts": n, "rounds": rounds, "floor_nft_f_s": round(floor, 3),
            "debtgate_s": round(mine, 3), "ratio": round(mine / floor, 2),
            "libnftables_s": round(via_lib, 3), "libnftables_ratio": round(via_lib / floor, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--delta", type=int, default=1000)
    ap.add_argument("--load", type=int, default=100_000, help="hosts of the apply part")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--inner", action="store_true")
    args = ap.parse_args()
    if not args.inner:
        ns = f"dgbench{os.getpid()}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        try:
            rc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__,
                                 "--inner", *sys.argv[1:]], check=False).returncode
        finally:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        sys.exit(rc)
    out = {"delta": bench_delta(args.size, args.delta, args.rounds),
           "apply": bench_apply(args.load, args.rounds)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
