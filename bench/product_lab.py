"""One lab for every product benchmark: billing, namespaces, the daemon, probers, clients.

:func:`open_lab` builds it (PostgreSQL with N subscribers, the namespaces, two probers
in the subscriber namespace: ``prober`` times payments, ``watcher`` a sample of
addresses), :meth:`Lab.close` removes all of it. The daemon is not started here: each
scenario starts, restarts or stops it (``lab.daemon``).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from product_billing import Plan, make_plan, start_billing
from product_daemon import Daemon
from product_net import Prober, build

from debtgate_lab.netlab import Topology
from debtgate_lab.pglab import PgServer


@dataclass
class Lab:
    plan: Plan
    server: PgServer
    topo: Topology
    work: Path
    daemon: Daemon
    prober: Prober
    watcher: Prober
    conn: Any = None
    """The billing connection payments and storms commit on (asyncpg, autocommit)."""
    side: Any = None
    """A second connection, for reading the audit table."""
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def gw(self) -> str:
        return self.topo.gw

    async def connect(self) -> None:
        self.conn = await asyncpg.connect(self.server.socket_dsn)
        self.side = await asyncpg.connect(self.server.socket_dsn)

    async def disconnect(self) -> None:
        for c in (self.conn, self.side):
            if c is not None:
                await c.close()
        self.conn = self.side = None

    async def audit_mark(self) -> int:
        mark: int | None = await self.side.fetchval(
            "SELECT max(id) FROM debtgate.audit")
        return mark or 0

    async def audit_count(self, after: int, new: str) -> int:
        """Accounts the audit rows after ``after`` record as moved to ``new``."""
        count: int | None = await self.side.fetchval(
            "SELECT sum(CASE WHEN event = 'transitions' THEN (data->>'count')::int ELSE 1 END)"
            " FROM debtgate.audit WHERE id > $1 AND event IN ('transition', 'transitions')"
            " AND data->>'new' = $2", after, new)
        return count or 0

    async def close(self) -> None:
        await self.disconnect()
        await self.daemon.stop()
        await self.prober.close()
        await self.watcher.close()
        self.topo.teardown()
        self.server.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)


async def open_lab(n: int, probers: int = 8, sample: int = 24) -> Lab:
    plan = make_plan(n, probers=probers, sample=sample)
    work = Path(tempfile.mkdtemp(prefix="debtgate-bench-"))
    work.chmod(0o755)  # the billing's server runs as the postgres user
    server = await asyncio.to_thread(start_billing, plan, work / "pg")
    topo = await asyncio.to_thread(build, plan.local_addresses())
    daemon = Daemon(topo.gw, work, server.socket_dsn)
    return Lab(plan, server, topo, work, daemon, await Prober.start(topo),
               await Prober.start(topo))


def summary(values_s: list[float]) -> dict[str, Any]:
    """p50/p90/p99/max/min in milliseconds of a list of seconds."""
    if not values_s:
        return {"trials": 0}
    v = sorted(values_s)
    q = statistics.quantiles(v, n=100, method="inclusive") if len(v) > 1 else [v[0]] * 99
    return {"trials": len(v), "p50_ms": round(statistics.median(v) * 1000, 1),
            "p90_ms": round(q[89] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "max_ms": round(v[-1] * 1000, 1), "min_ms": round(v[0] * 1000, 1)}


async def until(pred: Any, deadline: float, interval: float = 0.1) -> float | None:
    """Poll the coroutine function ``pred`` until true; the monotonic time it was."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if await pred():
            return time.monotonic()
        await asyncio.sleep(interval)
    return None
