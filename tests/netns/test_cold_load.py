"""A cold start from a large subscriber file against the real kernel: the snapshot is
one transaction, add-only, a restart writes nothing.

The engine runs in a worker process (this file with ``--serve FILE``) inside a
namespace the test creates, with the shipped ruleset and the real nft adapter."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from debtgate_lab.netlab import can_run, sh

pytestmark = pytest.mark.netns
RULESET = Path(__file__).resolve().parents[2] / "nft-rules" / "debtgate.nft"


def serve(path: str) -> None:
    import asyncio

    from debtgate.billing.base import Snapshot
    from debtgate.billing.file import parse_text
    from debtgate.billing.rows import Policy
    from debtgate.enforce.engine import Engine
    from debtgate.kernel.conntrack import NullCutter
    from debtgate.kernel.nft import NftAdapter

    async def start() -> dict[str, Any]:
        nft = NftAdapter()
        plans: list[tuple[int, bool]] = []
        apply = nft.apply

        async def recording(plan: Any) -> None:
            plans.append((plan.writes, any(d.delete for d in plan.changes)))
            await apply(plan)

        nft.apply = recording  # type: ignore[method-assign]
        engine = Engine(nft, NullCutter(), Policy())
        await engine.adopt_kernel()
        await engine.handle(Snapshot(parse_text(Path(path).read_bytes(), "json")))
        sets = await nft.read_sets(("blocked_v4_host", "locked_v4_host", "warn_v4_host",
                                    "blocked_v4_net"))
        return {"plans": plans, "writes": engine.stats.kernel_writes,
                "accounts": len(engine.inventory),
                "sets": {k: sorted(v) for k, v in sets.items()}}

    print(json.dumps([asyncio.run(start()) for _ in range(2)]))


def test_a_cold_file_load_is_one_transaction_and_a_restart_writes_nothing(
        tmp_path: Path) -> None:
    why = can_run()
    if why:
        pytest.skip(why)
    n = 60_000
    rows = [{"account": f"A{i}", "addresses": f"10.{8 + i // 65536}.{i // 256 % 256}.{i % 256}",
             "state": ("blocked", "active", "paused", "warn")[i % 4], "amount_due": "100"}
            for i in range(n)]
    rows.append({"account": "net", "addresses": "10.200.0.0/24", "state": "blocked"})
    rows.append({"account": "dup", "addresses": "10.8.0.0", "state": "active"})  # A0's host
    path = tmp_path / "subscribers.json"
    path.write_text(json.dumps(rows))
    ns = f"dghs{random.randbytes(3).hex()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("nft", "-f", str(RULESET), ns=ns)
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--serve",
                              str(path)], capture_output=True, text=True, check=True, timeout=300)
    finally:
        sh("ip", "netns", "del", ns, check=False)
    first, restart = json.loads(out.stdout)
    want = {
        "blocked_v4_host": sorted(r["addresses"] for r in rows[:n] if r["state"] == "blocked"),
        "locked_v4_host": sorted(r["addresses"] for r in rows[:n] if r["state"] == "paused"),
        "warn_v4_host": sorted(r["addresses"] for r in rows[:n] if r["state"] == "warn"),
        "blocked_v4_net": ["10.200.0.0/24"],
    }
    assert first["sets"] == want
    # 45,000 restricting rows and the prefix, in one add-only transaction (A0's host is
    # claimed twice: the earlier row keeps it, "dup" is rejected).
    assert first["plans"] == [[45_001, False]]
    assert first["writes"] == 45_001 and first["accounts"] == n + 1
    # A restart adopts what the kernel holds: no write.
    assert restart["sets"] == want
    assert restart["plans"] == [] and restart["writes"] == 0


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve(sys.argv[2])
