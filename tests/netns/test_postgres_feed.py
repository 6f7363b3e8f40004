"""The real daemon fed by a real PostgreSQL billing, enforcing in network namespaces."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from debtgate_lab.netlab import Topology
from tests.pgserver import PgServer, reference_billing

from .conftest import WEB_V4, DaemonProc, curl, nft_set, postgres_config, wait_for, wait_http

pytestmark = [pytest.mark.netns, pytest.mark.postgres]


@pytest.fixture(scope="module")
def billing() -> Iterator[PgServer]:
    with reference_billing() as server:
        yield server


@pytest.fixture(scope="module")
def daemon(topo: Topology, billing: PgServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[DaemonProc]:
    # The Unix socket is reachable from the gateway's namespace.
    extra = postgres_config(billing.socket_dsn, "heartbeat_interval = 1\nreconnect_max = 2\n")
    d = DaemonProc(topo, tmp_path_factory.mktemp("pgdaemon"), [], extra_config=extra)
    d.start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.stop()


def test_snapshot_enforced(daemon: DaemonProc) -> None:
    t = daemon.topo
    assert nft_set(t, "blocked_v4_host") == {"100.64.1.11"}
    assert nft_set(t, "locked_v4_host") == {"100.64.1.13"}
    assert nft_set(t, "warn_v4_net") == {"100.64.2.0/28"}
    assert curl(t, "blk", f"http://{WEB_V4}/") == (0, "portal\n")
    assert curl(t, "act", f"http://{WEB_V4}/") == (0, "web host\n")


def test_payment_lifts_the_block(daemon: DaemonProc, billing: PgServer) -> None:
    t = daemon.topo
    assert curl(t, "blk", f"http://{WEB_V4}/") == (0, "portal\n")
    started = time.monotonic()
    billing.psql("INSERT INTO payments (account_id, amount) VALUES ('A-blocked', 1250)")
    wait_http(t, "blk", f"http://{WEB_V4}/", want="web host", deadline=3)
    assert time.monotonic() - started < 2
    assert "100.64.1.11" not in nft_set(t, "blocked_v4_host")


def test_update_blocks(daemon: DaemonProc, billing: PgServer) -> None:
    t = daemon.topo
    billing.psql("UPDATE accounts SET state = 'blocked', balance = -50, since = current_date"
                 " WHERE id = 'A-active'")
    wait_for(lambda: "100.64.1.10" in nft_set(t, "blocked_v4_host"), deadline=3, what="block")
    assert curl(t, "act", f"http://{WEB_V4}/") == (0, "portal\n")
    billing.psql("INSERT INTO payments (account_id, amount) VALUES ('A-active', 50)")
    wait_http(t, "act", f"http://{WEB_V4}/", want="web host", deadline=3)


def test_billing_down_for_a_minute_changes_nothing(daemon: DaemonProc, billing: PgServer
                                                    ) -> None:
    """Drill (issue 6): billing down for a minute; probes show enforcement unchanged and
    the status says the feed is down; then changes made meanwhile are applied."""
    t = daemon.topo
    before = {n: nft_set(t, n) for n in ("blocked_v4_host", "locked_v4_host", "warn_v4_net")}
    billing.stop()
    try:
        wait_for(lambda: "billing database unreachable" in daemon.log(), deadline=5,
                 what="outage logged")
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "debtgate.cli", "status", "--json", "--socket",
             str(daemon.workdir / "api.sock")], capture_output=True, text=True,
            check=True).stdout)
        assert status["feed"]["connected"] is False
        end = time.monotonic() + 60
        while time.monotonic() < end:
            assert {n: nft_set(t, n) for n in before} == before
            assert curl(t, "pau", f"http://{WEB_V4}/") == (0, "portal\n")
            assert curl(t, "act", f"http://{WEB_V4}/") == (0, "web host\n")
            time.sleep(5)
        assert daemon.proc is not None and daemon.proc.poll() is None
    finally:
        billing.start()
    billing.psql("UPDATE accounts SET state = 'blocked' WHERE id = 'A-paused'")
    wait_for(lambda: "100.64.1.13" in nft_set(t, "blocked_v4_host"), deadline=8,
             what="change after the outage")
