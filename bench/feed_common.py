"""Shared helpers of the bench/feed_*.py benchmarks: a throwaway billing with N subscribers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

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


async def start_daemon(dsn: str, guard: bool = True, coalesce_ms: int = 20
                       ) -> tuple[object, object]:
    """The daemon's enforcement core in this network namespace: the shipped ruleset
    loaded by the real nft adapter, an Engine fed by the PostgresSource."""
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
    engine = Engine(nft, NullCutter(), Policy(min_prefix_v4=8))
    engine.guard = GuardPolicy(enabled=guard)
    await engine.adopt_kernel()
    source = PostgresSource(PostgresSourceSection(dsn=dsn, resync_interval=3600,
                                                  coalesce_ms=coalesce_ms))
    return engine, source


def nft_floor(elements: list[str], ns: str | None) -> float:
    """``nft -f`` of the elements into a scratch hash set: the kernel's floor."""
    import subprocess
    import tempfile

    body = ", ".join(elements)
    script = ("table inet dgfloor { set s { type ipv4_addr; }; }\n"
              f"add element inet dgfloor s {{ {body} }}\n")
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(script)
    pre = ["ip", "netns", "exec", ns] if ns else []
    started = time.perf_counter()
    subprocess.run([*pre, "nft", "-f", f.name], check=True)
    took = time.perf_counter() - started
    subprocess.run([*pre, "nft", "delete", "table", "inet", "dgfloor"], check=True)
    os.unlink(f.name)
    return took
