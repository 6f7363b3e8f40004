"""A new account's prefix never cuts other accounts' hosts (issue 16, defect 1).

Four active accounts hold 100.64.7.9-100.64.7.12 (the last also 2001:db8:100:700::12); a
blocked account claims 100.64.7.8/29 and 2001:db8:100:700::/56. The narrower claims win
in any order: the prefix is enforced without them (carved), so the active subscriber at
100.64.7.12 reaches the web while 100.64.7.13, inside the prefix and nobody else's, gets
the stub page. Real kernel, real curl, the file source (snapshots) and PostgreSQL (deltas).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.netlab import Topology
from tests.pgserver import PgServer, reference_billing

from .conftest import (
    SUBSCRIBERS,
    WEB_V4,
    WEB_V6,
    DaemonProc,
    curl,
    nft_set,
    postgres_config,
    wait_for,
)

pytestmark = pytest.mark.netns

COVERED_V4, COVERED_V6 = "100.64.7.12", "2001:db8:100:700::12"
INSIDE_V4, INSIDE_V6 = "100.64.7.13", "2001:db8:100:700::13"
PREFIX_V4, PREFIX_V6 = "100.64.7.8/29", "2001:db8:100:700::/56"
NEIGHBOURS = [
    {"account": f"C-{i}", "addresses": [f"100.64.7.{i}"], "state": "active"} for i in (9, 10, 11)
] + [{"account": "C-12", "addresses": [COVERED_V4, COVERED_V6], "state": "active"}]
NEWCOMER = {"account": "N-prefix", "addresses": [PREFIX_V4, PREFIX_V6], "state": "blocked",
            "amount_due": "10"}


@pytest.fixture(scope="module")
def hosts(topo: Topology) -> Topology:
    topo.add_host("cov", [COVERED_V4], [COVERED_V6])
    topo.add_host("ins", [INSIDE_V4], [INSIDE_V6])
    return topo


def web(t: Topology, host: str) -> tuple[str, str]:
    """What the host sees of the web host over IPv4 and over IPv6."""
    return (curl(t, host, f"http://{WEB_V4}/")[1].strip(),
            curl(t, host, f"http://[{WEB_V6}]/")[1].strip())


def explain(d: DaemonProc, key: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "debtgate.cli", "explain", key, "--json",
                          "--socket", str(d.workdir / "api.sock")], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def carved(t: Topology) -> bool:
    return ("100.64.7.14/31" in nft_set(t, "blocked_v4_net")
            and INSIDE_V4 in nft_set(t, "blocked_v4_host"))


def assert_carved(d: DaemonProc) -> None:
    t = d.topo
    assert PREFIX_V4 not in nft_set(t, "blocked_v4_net")
    assert PREFIX_V6 not in nft_set(t, "blocked_v6_net")
    assert COVERED_V4 not in nft_set(t, "blocked_v4_host")
    assert web(t, "cov") == ("web host", "web host")
    assert web(t, "ins") == ("portal", "portal")
    assert explain(d, COVERED_V4)["enforced_state"] == "active"
    assert explain(d, COVERED_V6)["account"] == "C-12"
    assert explain(d, INSIDE_V4)["account"] == "N-prefix"
    assert "account=N-prefix reason=address_conflict" in d.log()
    assert "account=C-12 reason=address_conflict" not in d.log()


@pytest.fixture
def file_daemon(hosts: Topology, tmp_path: Path) -> Iterator[DaemonProc]:
    d = DaemonProc(hosts, tmp_path, SUBSCRIBERS + NEIGHBOURS)
    d.start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.stop()


def test_prefix_in_a_snapshot_spares_the_hosts_it_covers(file_daemon: DaemonProc) -> None:
    t = file_daemon.topo
    assert web(t, "cov") == ("web host", "web host")
    file_daemon.write_subscribers(SUBSCRIBERS + NEIGHBOURS + [NEWCOMER])
    wait_for(lambda: carved(t), what="the prefix enforced, carved")
    assert_carved(file_daemon)


def test_hosts_arriving_after_the_prefix_are_carved_out(file_daemon: DaemonProc) -> None:
    t = file_daemon.topo
    file_daemon.write_subscribers(SUBSCRIBERS + [NEWCOMER])
    wait_for(lambda: PREFIX_V4 in nft_set(t, "blocked_v4_net"), what="the whole prefix")
    assert web(t, "cov") == ("portal", "portal")  # nobody else claims it yet
    file_daemon.write_subscribers(SUBSCRIBERS + [NEWCOMER] + NEIGHBOURS)
    wait_for(lambda: carved(t), what="the prefix carved around the newcomers")
    assert_carved(file_daemon)
    # The covered account leaves: the prefix is whole again.
    file_daemon.write_subscribers(SUBSCRIBERS + [NEWCOMER])
    wait_for(lambda: PREFIX_V4 in nft_set(t, "blocked_v4_net"), what="the prefix whole again")
    assert web(t, "cov") == ("portal", "portal")


@pytest.fixture(scope="module")
def billing() -> Iterator[PgServer]:
    with reference_billing() as server:
        yield server


@pytest.fixture
def pg_daemon(hosts: Topology, billing: PgServer, tmp_path: Path) -> Iterator[DaemonProc]:
    extra = postgres_config(billing.socket_dsn)
    billing.psql("DELETE FROM accounts WHERE id LIKE 'C-%' OR id = 'N-prefix'")
    d = DaemonProc(hosts, tmp_path, [], extra_config=extra)
    d.start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.stop()


def _add_neighbours(billing: PgServer) -> None:
    billing.psql("INSERT INTO accounts (id, state) VALUES ('C-9', 'active'), "
                 "('C-10', 'active'), ('C-11', 'active'), ('C-12', 'active');"
                 "INSERT INTO addresses (address, account_id) VALUES ('100.64.7.9', 'C-9'), "
                 "('100.64.7.10', 'C-10'), ('100.64.7.11', 'C-11'), "
                 f"('{COVERED_V4}', 'C-12'), ('{COVERED_V6}', 'C-12')")


def _add_newcomer(billing: PgServer) -> None:
    billing.psql("INSERT INTO accounts (id, state, balance) VALUES ('N-prefix', 'blocked', -10);"
                 "INSERT INTO addresses (address, account_id) VALUES "
                 f"('{PREFIX_V4}', 'N-prefix'), ('{PREFIX_V6}', 'N-prefix')")


@pytest.mark.postgres
def test_prefix_in_a_delta_spares_the_hosts_it_covers(pg_daemon: DaemonProc,
                                                       billing: PgServer) -> None:
    t = pg_daemon.topo
    _add_neighbours(billing)
    wait_for(lambda: explain(pg_daemon, COVERED_V4).get("account") == "C-12",
             what="neighbours applied")
    _add_newcomer(billing)
    wait_for(lambda: carved(t), what="the prefix enforced, carved")
    assert_carved(pg_daemon)


@pytest.mark.postgres
def test_hosts_in_a_delta_after_the_prefix_are_carved_out(pg_daemon: DaemonProc,
                                                           billing: PgServer) -> None:
    t = pg_daemon.topo
    _add_newcomer(billing)
    wait_for(lambda: PREFIX_V4 in nft_set(t, "blocked_v4_net"), what="the whole prefix")
    assert web(t, "cov") == ("portal", "portal")
    _add_neighbours(billing)
    wait_for(lambda: carved(t), what="the prefix carved around the newcomers")
    assert_carved(pg_daemon)


def test_another_gateways_rows_neither_trip_the_guard_nor_count(hosts: Topology,
                                                                tmp_path: Path) -> None:
    """108 local rows, then one local block together with 400 blocked rows of another
    gateway's prefixes: the block applies at once (the guard counts only local rows)."""
    t = hosts
    local = SUBSCRIBERS + [{"account": f"L-{i}", "addresses": [f"100.64.20.{i}"],
                            "state": "active"} for i in range(104)]
    foreign = [{"account": f"F-{i}", "addresses": [f"100.65.{i // 200}.{i % 200 + 1}"],
                "state": "blocked"} for i in range(400)]
    d = DaemonProc(t, tmp_path, local)
    d.start()
    try:
        d.write_subscribers([dict(s, state="blocked") if s["account"] == "A-active" else s
                             for s in local] + foreign)
        wait_for(lambda: "100.64.1.10" in nft_set(t, "blocked_v4_host"), what="local block")
        assert "mass-change guard" not in d.log()
        assert not any(e.startswith("100.65.") for e in nft_set(t, "blocked_v4_host"))
        status = json.loads(subprocess.run(
            [sys.executable, "-m", "debtgate.cli", "status", "--json", "--socket",
             str(d.workdir / "api.sock")], capture_output=True, text=True, check=True).stdout)
        assert sum(status["subscribers"].values()) == 108
        assert status["feed"]["foreign"] == {"rows": 400, "addresses": 400}
        metrics = subprocess.run(["curl", "-s", "--unix-socket", str(d.workdir / "api.sock"),
                                  "http://debtgate/metrics"], capture_output=True, text=True,
                                 check=True).stdout
        assert "debtgate_foreign_rows 400.0" in metrics
        said = explain(d, "100.65.0.1")
        assert said["foreign"] is True and "another gateway" in str(said["why"])
    finally:
        d.stop()
