"""What saving the applied state costs the event loop, before and after #17's fix.

    .venv/bin/python bench/persist_cost.py [--restricted 100000]

Prints the on-loop copy (``StateFile.take``), the encode at once (which holds the
interpreter lock, in a thread too) and the longest of the writer task's encode steps
(the loop is free between them), against the old route: row dicts built on the loop
and ``json.dumps``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from debtgate.enforce.persist import StateFile, subscriber_row
from debtgate.model import State, Subscriber


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--restricted", type=int, default=100_000)
    n = ap.parse_args().restricted
    subs = [Subscriber(f"acc-{i:07d}", (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",),
                       State.BLOCKED, Decimal("1250.00"), "RUB", date(2026, 11, 1), None,
                       f"Name {i}", "ru", "Home 100") for i in range(n)]
    sets = {"blocked_v4_host": {s.addresses[0] for s in subs}}
    t0 = time.perf_counter()
    rows = ({k: sorted(v) for k, v in sets.items()}, [subscriber_row(s) for s in subs])
    t1 = time.perf_counter()
    json.dumps({"version": 1, "sets": rows[0], "subscribers": rows[1]})
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        state = StateFile(Path(tmp) / "applied.json")
        t3 = time.perf_counter()
        state.take(sets, subs)
        t4 = time.perf_counter()
        state.save_now()
        t5 = time.perf_counter()
        state.take(sets, subs)  # the writer task's route: steps on the loop, then the write
        steps = []
        last = time.perf_counter()
        for _ in state._parts():
            now = time.perf_counter()
            steps.append(now - last)
            last = now
    print(json.dumps({"restricted": n, "old_on_loop_s": round(t1 - t0, 4),
                      "old_json_dumps_s": round(t2 - t1, 4),
                      "new_take_on_loop_s": round(t4 - t3, 4),
                      "whole_encode_and_write_s": round(t5 - t4, 4),
                      "stepwise_steps": len(steps), "stepwise_longest_step_s": round(max(steps), 4),
                      "stepwise_encode_total_s": round(sum(steps), 4)}))


if __name__ == "__main__":
    main()
