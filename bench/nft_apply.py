"""Enforcement benchmarks (issue 2), ratios against `nft -f` floors measured in the same run.

    sudo .venv/bin/python bench/nft_apply.py [--size 1000000] [--delta 1000] [--load 100000]

Runs in throwaway network namespaces (its own kernel tables). Prints JSON.
1. delta: a set holding SIZE addresses; a change of DELTA addresses (half added, half
   removed) through debtgate's path (pure reconcile scoped to the change -> one libnftables
   transaction) vs `nft -f` of the same delta written by hand.
2. load: LOAD blocked subscribers from the file source (file read, JSON decode, validation,
   desired state, reconcile, one transaction) into an empty table vs `nft -f` of the same
   elements, median of ROUNDS: "enforced" when the transaction returned (the target's
   measure), "settled" when the engine is done (inventory, placements, transitions).
3. apply: `NftAdapter.apply` alone of a plan adding LOAD IPv4 hosts into an empty set (the
   netlink fast path; libnftables as well, for comparison) vs `nft -f` of the same elements,
   median of ROUNDS, each into a freshly loaded table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
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
        subprocess.run(["nft", "-f", "-"], input=f"add element inet debtgate {name} {{ {chunk} }}\n",
                       text=True, check=True)


def bench_delta(size: int, delta: int, rounds: int) -> dict[str, object]:
    from debtgate.adapters.nft import NftAdapter
    from debtgate.core.reconcile import commit, reconcile

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


def bench_load(n: int, rounds: int) -> dict[str, object]:
    """Medians over ``rounds``: the floor, the time until the kernel holds every element
    ("enforced": the transaction returned) and until the engine has settled (inventory,
    placements, transitions done: ``handle`` returned)."""
    from debtgate.adapters.conntrack import NullCutter
    from debtgate.adapters.nft import NftAdapter
    from debtgate.core.reconcile import Plan
    from debtgate.engine import Engine
    from debtgate.sources.base import Snapshot
    from debtgate.sources.file import parse_text
    from debtgate.validate import Policy

    class Stamped(NftAdapter):
        """The real adapter; notes when the last transaction returned."""

        applied_at = 0.0

        async def apply(self, plan: Plan) -> None:
            await super().apply(plan)
            self.applied_at = time.perf_counter()

    elems = addrs(n, "100.64.0.0")
    script = f"add element inet debtgate blocked_v4_host {{ {', '.join(elems)} }}\n"
    rows = [{"account": f"A{i}", "addresses": [a], "state": "blocked", "amount_due": "500"}
            for i, a in enumerate(elems)]
    floors, enforced, settled = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subscribers.json"
        path.write_text(json.dumps(rows))

        async def run() -> tuple[float, float]:
            nft = Stamped()
            engine = Engine(nft, NullCutter(), Policy(min_prefix_v4=8))
            await engine.adopt_kernel()
            started = time.perf_counter()
            parsed = parse_text(path.read_bytes(), "json")
            await engine.handle(Snapshot(parsed))
            done = time.perf_counter()
            assert engine.stats.kernel_writes == n
            return nft.applied_at - started, done - started

        for _ in range(rounds):
            reset()
            floors.append(nft_f(script))
            reset()
            gc.collect()  # the previous round's engine is garbage: not this round's cost
            got = asyncio.run(run())
            enforced.append(got[0])
            settled.append(got[1])
    floor = statistics.median(floors)
    to_enforced, to_settled = statistics.median(enforced), statistics.median(settled)
    return {"subscribers": n, "rounds": rounds, "floor_nft_f_s": round(floor, 3),
            "enforced_s": round(to_enforced, 3), "settled_s": round(to_settled, 3),
            "rounds_floor_s": [round(x, 3) for x in floors],
            "rounds_enforced_s": [round(x, 3) for x in enforced],
            "ratio": round(to_enforced / floor, 2), "ratio_settled": round(to_settled / floor, 2),
            "target": "<= 1.5 (enforced)"}


def bench_apply(n: int, rounds: int) -> dict[str, object]:
    from debtgate.adapters.nft import NftAdapter
    from debtgate.core.reconcile import Plan, SetDelta

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
    ap.add_argument("--load", type=int, default=100_000)
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
           "load": bench_load(args.load, args.rounds),
           "apply": bench_apply(args.load, args.rounds)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
