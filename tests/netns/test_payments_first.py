"""Payments first, on the real daemon, kernel and billing: a payment committed while a
storm of tens of thousands of blocks is being applied opens the Internet within a
bound far below the storm's own duration; at a restart the daemon is ready, and a
payment takes effect, before its first snapshot is applied (#17)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from debtgate_lab.netlab import Topology, sh
from tests.pgserver import PgServer, reference_billing

from .conftest import WEB_V4, DaemonProc, curl, postgres_config, wait_for, wait_http

pytestmark = [pytest.mark.netns, pytest.mark.postgres]

STORM = 60_000
"""Accounts blocked in one UPDATE: hosts 100.64.16.0 + i, inside ``serves``."""


def storm_host(i: int) -> str:
    n = (100 << 24) + (64 << 16) + (16 << 8) + i
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


@pytest.fixture(scope="module")
def billing() -> Iterator[PgServer]:
    with reference_billing() as server:
        server.psql(f"""
SET session_replication_role = replica;
INSERT INTO accounts (id, state, address_list, name, language, tariff, balance)
SELECT 'S' || i, 'active', host('100.64.16.0'::inet + i), 'Storm ' || i, 'en', 'Home', 10
FROM generate_series(1, {STORM}) i;
INSERT INTO addresses (address, account_id)
SELECT '100.64.16.0'::inet + i, 'S' || i FROM generate_series(1, {STORM}) i;
SET session_replication_role = origin;
VACUUM ANALYZE;
""")
        yield server


def in_set(t: Topology, host: str) -> bool:
    return sh("nft", "get", "element", "inet", "debtgate", "blocked_v4_host",
              f"{{ {host} }}", ns=t.gw, check=False).returncode == 0


def test_a_payment_during_a_storm_passes_long_before_the_storm_ends(
        topo: Topology, billing: PgServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    extra = postgres_config(billing.socket_dsn, "[guard]\nenabled = false\n")
    d = DaemonProc(topo, tmp_path_factory.mktemp("storm"), [], extra_config=extra)
    d.start()
    try:
        assert curl(topo, "blk", f"http://{WEB_V4}/") == (0, "portal\n")
        sample = [storm_host(i) for i in (1, STORM // 3, STORM // 2, STORM - 1, STORM)]
        assert not any(in_set(topo, h) for h in sample)
        storm_done: list[float] = []

        def watch_storm() -> None:
            wait_for(lambda: all(in_set(topo, h) for h in sample), deadline=60,
                     what="the storm enforced")
            storm_done.append(time.monotonic())

        billing.psql("UPDATE accounts SET state = 'blocked', balance = -100, "
                     "since = current_date WHERE id LIKE 'S%'")
        committed = time.monotonic()
        watcher = threading.Thread(target=watch_storm)
        watcher.start()
        time.sleep(0.05)
        billing.psql("INSERT INTO payments (account_id, amount) VALUES ('A-blocked', 1250)")
        paid = time.monotonic()
        wait_http(topo, "blk", f"http://{WEB_V4}/", want="web host", deadline=10)
        passed = time.monotonic()
        watcher.join(70)
        assert storm_done, "the storm was never enforced"
        storm = storm_done[0] - committed
        latency = passed - paid
        print(f"storm enforced {storm:.2f} s after its commit; the payment passed "
              f"{latency * 1000:.0f} ms after its commit")
        # The storm takes the daemon well over a second; the payment does not wait for it.
        assert storm > 1.0, f"the storm took {storm:.2f} s: too small to show the rule"
        assert latency < 0.5 and latency < storm / 3, (latency, storm)
        assert passed < storm_done[0], "the payment waited for the storm"
        assert in_set(topo, storm_host(STORM // 2))
        assert not in_set(topo, "100.64.1.11")
    finally:
        d.stop()


def _status(d: DaemonProc) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "debtgate.cli", "status", "--json", "--socket",
                          str(d.workdir / "api.sock")], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_a_restart_is_ready_and_serves_a_payment_before_its_first_snapshot(
        topo: Topology, billing: PgServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    billing.psql("UPDATE accounts SET state = 'blocked', balance = -100 WHERE id = 'S7'")
    host = storm_host(7)
    # Every snapshot takes 3 s longer (the accounts query a payment is read with does not).
    slow = ('snapshot_query = "SELECT s.* FROM debtgate_subscribers s, pg_sleep(3)"\n'
            "[guard]\nenabled = false\n")
    d = DaemonProc(topo, tmp_path_factory.mktemp("restart"), [],
                   extra_config=postgres_config(billing.socket_dsn, slow))
    d.start()
    try:
        wait_for(lambda: in_set(topo, host) and _status(d)["sync"]["in_sync"], deadline=30,
                 what="the first daemon synced")
        d.stop()
        offset = len(d.log())
        started = time.monotonic()
        d.start(synced=False)  # returns at its " ready: " line
        ready = time.monotonic() - started
        after = d.log()[offset:]
        assert "ready: enforcing the kernel's state, following billing" in after
        assert _status(d)["sync"]["in_sync"] is False  # the snapshot is still being read
        billing.psql("INSERT INTO payments (account_id, amount) VALUES ('S7', 1000)")
        paid = time.monotonic()
        wait_for(lambda: not in_set(topo, host), deadline=10, what="the payment applied")
        latency = time.monotonic() - paid
        assert _status(d)["sync"]["in_sync"] is False, "the payment waited for the snapshot"
        print(f"ready {ready:.2f} s after the restart's spawn; the payment passed "
              f"{latency * 1000:.0f} ms after its commit")
        assert latency < 1.0
        wait_for(lambda: _status(d)["sync"]["in_sync"], deadline=30, what="the snapshot")
        wait_for(lambda: " synced: " in d.log()[offset:], what="the synced line")
        assert not in_set(topo, host)  # the older snapshot did not undo the payment
        # The persisted state told the restarted daemon who was restricted: the first
        # snapshot announces no one again, only the payment's transition.
        after = d.log()[offset:]
        assert " restricted subscribers of the last applied state (" in after
        assert '"audit": "transitions"' not in after
        assert after.count('"audit": "transition"') == 1 and '"account": "S7"' in after
        middle = billing.psql("SELECT state FROM accounts WHERE id = 'S30000'", "-At")
        assert in_set(topo, storm_host(STORM // 2)) == (middle.strip() == "blocked")
    finally:
        d.stop()
