"""Shared helpers of the bench/feed_*.py benchmarks: a throwaway billing with N subscribers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debtgate.sources.pglab import PgServer  # noqa: E402

SNAPSHOT_QUERY = "SELECT * FROM debtgate_subscribers"
ACCOUNTS_QUERY = "SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[])"


def address_of(i: int) -> str:
    """The i-th subscriber's address: 10.0.0.0 + i."""
    n = 0x0A000000 + i
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def populate(server: PgServer, n: int, restricted_every: int = 10) -> None:
    """n accounts acc1..accN, one IPv4 host each; every k-th blocked with a debt."""
    server.psql(f"""
SET session_replication_role = replica;  -- bulk load without the notify triggers
INSERT INTO accounts (id, address_list, name, language, tariff, balance, state, since)
SELECT 'acc' || i, host('10.0.0.0'::inet + i), 'Subscriber ' || i, 'ru', 'Home ' || (i % 5),
       CASE WHEN i % {restricted_every} = 0 THEN -500 ELSE 100 END,
       CASE WHEN i % {restricted_every} = 0 THEN 'blocked' ELSE 'active' END,
       CASE WHEN i % {restricted_every} = 0 THEN date '2026-11-01' END
FROM generate_series(1, {n}) i;
INSERT INTO addresses (address, account_id)
SELECT '10.0.0.0'::inet + i, 'acc' || i FROM generate_series(1, {n}) i;
SET session_replication_role = origin;
VACUUM ANALYZE;
""")


def billing(n: int) -> PgServer:
    server = PgServer()
    server.start()
    server.load_schema()
    started = time.perf_counter()
    populate(server, n)
    print(f"# populated {n} subscribers in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return server


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def start_daemon(dsn: str, guard: bool = True, coalesce_ms: int = 20,
                       **source_options: object) -> tuple[object, object]:
    """The daemon's enforcement core in this network namespace: the shipped ruleset
    loaded by the real nft adapter (wrapped in an :class:`EnforceClock` on
    ``blocked_v4_host``: ``engine.nft``), an Engine fed by the PostgresSource."""
    from debtgate.adapters.conntrack import NullCutter
    from debtgate.adapters.nft import NftAdapter, read_template, render_ruleset
    from debtgate.config import DEFAULT_RULESET
    from debtgate.core.guard import GuardPolicy
    from debtgate.engine import Engine
    from debtgate.sources.postgres import PostgresSource, PostgresSourceSection
    from debtgate.validate import Policy

    nft = NftAdapter()
    await nft.load_ruleset(render_ruleset(read_template(DEFAULT_RULESET), portal_v4="10.255.255.1",
                                          portal_v6=None, portal_port=8080, portal_tls_port=8443))
    engine = Engine(EnforceClock(nft, "blocked_v4_host"), NullCutter(),  # type: ignore[arg-type]
                    Policy(min_prefix_v4=8))
    engine.guard = GuardPolicy(enabled=guard)
    await engine.adopt_kernel()
    source = PostgresSource(PostgresSourceSection(dsn=dsn, resync_interval=3600,
                                                  coalesce_ms=coalesce_ms, **source_options))
    return engine, source


class EnforceClock:
    """Wraps the engine's nft adapter: records when the kernel holds every wanted
    element of one set (the nft transaction that adds the last of them returned).

    While the clock runs it only counts the elements added (a set difference per
    transaction would cost the daemon's process a visible share of a storm's time);
    :meth:`verify` checks afterwards that the additions did hold every wanted one."""

    def __init__(self, nft: object, set_name: str) -> None:
        self._nft = nft
        self.set_name = set_name
        self._wanted: set[str] = set()
        self._left = 0
        self._added: list[tuple[str, ...]] = []
        self.started = 0.0
        self.reached: float | None = None
        self.first: float | None = None
        self.applies = 0

    def expect(self, elements: set[str]) -> None:
        """Start waiting for ``elements``; the clock starts now (or set ``started``)."""
        self._wanted = set(elements)
        self._left = len(elements)
        self._added = []
        self.started = time.perf_counter()
        self.reached = self.first = None
        self.applies = 0

    def verify(self) -> None:
        """Fail unless the transactions counted until :attr:`reached` added every
        wanted element."""
        added = set().union(*self._added)
        missing = self._wanted - added
        if missing:
            raise SystemExit(f"{len(missing)} wanted elements were never added "
                             f"(e.g. {sorted(missing)[:3]})")

    @property
    def elapsed(self) -> float | None:
        """Seconds from the start to the kernel holding every wanted element."""
        return None if self.reached is None else self.reached - self.started

    @property
    def first_elapsed(self) -> float | None:
        """Seconds from the start to the kernel holding the first of them."""
        return None if self.first is None else self.first - self.started

    async def apply(self, plan: object) -> None:
        await self._nft.apply(plan)  # type: ignore[attr-defined]
        now = time.perf_counter()
        if self._left > 0:
            self.applies += 1
            for delta in plan.changes:  # type: ignore[attr-defined]
                if delta.name == self.set_name and delta.add:
                    self._added.append(delta.add)
                    self._left -= len(delta.add)
                    if self.first is None:
                        self.first = now
            if self._left <= 0 and self.reached is None:
                self.reached = now

    def __getattr__(self, name: str) -> object:
        return getattr(self._nft, name)


def kernel_set(name: str) -> set[str]:
    """The kernel's content of one of the daemon's sets (``nft -j list set``)."""
    import json
    import subprocess

    from debtgate.adapters.nft import TABLE

    family, table = TABLE.split()
    out = subprocess.run(["nft", "-j", "list", "set", family, table, name],
                         capture_output=True, text=True, check=True).stdout
    elems: set[str] = set()
    for item in json.loads(out)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            if isinstance(elem, dict) and "elem" in elem:
                elem = elem["elem"]["val"]
            if isinstance(elem, str):
                elems.add(elem)
            elif isinstance(elem, dict) and "prefix" in elem:
                elems.add(f"{elem['prefix']['addr']}/{elem['prefix']['len']}")
    return elems


def nft_floor(elements: list[str], ns: str | None, runs: int = 3) -> float:
    """``nft -f`` of the elements into a scratch hash set: the kernel's floor, the
    median of ``runs`` (one run moves by +-30 % on a small VM; the runs are kept in
    :data:`FLOOR_RUNS`)."""
    import statistics
    import subprocess
    import tempfile

    body = ", ".join(elements)
    script = ("table inet dgfloor { set s { type ipv4_addr; }; }\n"
              f"add element inet dgfloor s {{ {body} }}\n")
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(script)
    pre = ["ip", "netns", "exec", ns] if ns else []
    FLOOR_RUNS.clear()
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*pre, "nft", "-f", f.name], check=True)
        FLOOR_RUNS.append(round(time.perf_counter() - started, 3))
        subprocess.run([*pre, "nft", "delete", "table", "inet", "dgfloor"], check=True)
    os.unlink(f.name)
    return statistics.median(FLOOR_RUNS)


FLOOR_RUNS: list[float] = []
"""The runs of the last :func:`nft_floor`, in seconds."""


def run_inner(ns: str, script: str, args: list[str]) -> dict[str, Any]:
    """Run ``script --inner ...`` in the namespace; its last line of output as JSON."""
    proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, script, *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
