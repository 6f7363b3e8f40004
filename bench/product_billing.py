"""The billing of the product benchmarks: a throwaway PostgreSQL with the reference schema.

N accounts ``acc1..accN``, one IPv4 host each (10.0.0.0 + i); every 10th blocked with a
debt (N/10 restricted). Some accounts get an address of the subscriber namespace
(100.64.x.y) so that a prober there sees their state:

* ``probers``: blocked accounts whose payments are timed (100.64.1.x);
* ``start_sample``: blocked accounts spread over the billing's order (100.64.3.x): all
  refused means the start enforced (every restriction, by the sample; checked with the
  kernel set after);
* ``storm_sample``: accounts of the storm (100.64.2.x), spread the same way.

The storm is the first N/10 active accounts, blocked in one UPDATE.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debtgate_lab.pglab import PgServer  # noqa: E402

STORM_SQL = ("UPDATE accounts SET state = '{state}', balance = {balance}, since = {since}"
             " WHERE id = ANY(ARRAY(SELECT 'acc' || i FROM generate_series(1, {hi}) i"
             " WHERE i % 10 <> 0))")
REBLOCK_SQL = ("UPDATE accounts SET state = 'blocked', balance = -500, since = current_date"
               " WHERE id = ANY($1::text[])")
PAY_SQL = "INSERT INTO payments (account_id, amount) VALUES ($1, 500)"


def address_of(i: int) -> str:
    n = 0x0A000000 + i
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def spread(ids: list[int], count: int) -> list[int]:
    """``count`` ids evenly spread over the billing's (text) order, first and last in."""
    order = sorted(ids, key=lambda i: f"acc{i}")
    if count >= len(order):
        return order
    step = (len(order) - 1) / (count - 1)
    return sorted({order[round(k * step)] for k in range(count)})


@dataclass
class Plan:
    n: int
    probers: dict[str, str] = field(default_factory=dict)
    start_sample: dict[str, str] = field(default_factory=dict)
    storm_sample: dict[str, str] = field(default_factory=dict)
    storm_hi: int = 0
    storm_size: int = 0

    @property
    def blocked(self) -> int:
        return self.n // 10

    def storm_sql(self, block: bool) -> str:
        if block:
            return STORM_SQL.format(state="blocked", balance=-500, since="current_date",
                                    hi=self.storm_hi)
        return STORM_SQL.format(state="active", balance=100, since="NULL", hi=self.storm_hi)

    def local_addresses(self) -> list[str]:
        return [*self.probers.values(), *self.start_sample.values(),
                *self.storm_sample.values()]


def make_plan(n: int, probers: int = 8, sample: int = 48) -> Plan:
    blocked = list(range(10, n + 1, 10))
    plan = Plan(n)
    for j, i in enumerate(blocked[-probers:]):
        plan.probers[f"acc{i}"] = f"100.64.1.{j + 1}"
    rest = blocked[:-probers]
    for j, i in enumerate(spread(rest, sample)):
        plan.start_sample[f"acc{i}"] = f"100.64.3.{j + 1}"
    storm: list[int] = []
    i = 0
    while len(storm) < n // 10:
        i += 1
        if i % 10:
            storm.append(i)
    plan.storm_hi, plan.storm_size = i, len(storm)
    for j, i in enumerate(spread(storm, sample)):
        plan.storm_sample[f"acc{i}"] = f"100.64.2.{j + 1}"
    return plan


def populate(server: PgServer, plan: Plan) -> None:
    n = plan.n
    moved = {**plan.probers, **plan.start_sample, **plan.storm_sample}
    values = ", ".join(f"('{a}', '{ip}')" for a, ip in moved.items())
    server.psql(f"""
SET session_replication_role = replica;  -- bulk load without the notify triggers
INSERT INTO accounts (id, address_list, name, language, tariff, balance, state, since)
SELECT 'acc' || i, host('10.0.0.0'::inet + i), 'Subscriber ' || i, 'ru', 'Home ' || (i % 5),
       CASE WHEN i % 10 = 0 THEN -500 ELSE 100 END,
       CASE WHEN i % 10 = 0 THEN 'blocked' ELSE 'active' END,
       CASE WHEN i % 10 = 0 THEN date '2026-11-01' END
FROM generate_series(1, {n}) i;
INSERT INTO addresses (address, account_id)
SELECT '10.0.0.0'::inet + i, 'acc' || i FROM generate_series(1, {n}) i;
CREATE TEMP TABLE moved (id text, ip inet);
INSERT INTO moved VALUES {values};
UPDATE accounts a SET address_list = host(m.ip) FROM moved m WHERE a.id = m.id;
UPDATE addresses d SET address = m.ip FROM moved m WHERE d.account_id = m.id;
SET session_replication_role = origin;
VACUUM ANALYZE;
""")


def start_billing(plan: Plan, base: Path | None = None) -> PgServer:
    server = PgServer(base)
    server.start()
    server.load_schema()
    started = time.perf_counter()
    populate(server, plan)
    print(f"# populated {plan.n} subscribers in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return server


def psql_seconds(server: PgServer, sql: str, runs: int = 3) -> float:
    """Median wall time of ``psql`` running ``sql`` (a floor: the client's own cost)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        server.psql(sql)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def restricted_addresses(plan: Plan) -> list[str]:
    """The kernel's ``blocked_v4_host`` once the billing's N/10 blocked are enforced."""
    moved = {**plan.probers, **plan.start_sample}
    return [moved.get(f"acc{i}", address_of(i)) for i in range(10, plan.n + 1, 10)]


def storm_addresses(plan: Plan) -> list[str]:
    """The addresses the storm blocks."""
    return [plan.storm_sample.get(f"acc{i}", address_of(i))
            for i in range(1, plan.storm_hi + 1) if i % 10]


RESTRICTED_COPY = ("\\copy (SELECT account, addresses, state FROM debtgate_subscribers"
                   " WHERE state <> 'active') TO '/dev/null'")
