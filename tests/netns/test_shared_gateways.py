"""Two gateways on one PostgreSQL billing: an override made on one is applied by both,
and both write to one audit table (issue 6: shared across gateways)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from debtgate_lab.netlab import Topology, can_run
from tests.pgserver import PgServer, reference_billing

from .conftest import WEB_V4, DaemonProc, curl, nft_set, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.postgres]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PgServer, list[DaemonProc]]]:
    why = can_run()
    if why:
        pytest.skip(why)
    topos = [Topology(), Topology()]
    daemons: list[DaemonProc] = []
    with contextlib.ExitStack() as stack:
        billing = stack.enter_context(reference_billing())
        stack.callback(lambda: [t.teardown() for t in topos])
        stack.callback(lambda: [d.stop() for d in daemons
                                if d.proc is not None and d.proc.poll() is None])
        for topo in topos:
            topo.build_gateway()
            topo.add_host("act", ["100.64.1.10"], [])
            topo.add_host("web", [WEB_V4], [], upstream=True)
            topo.serve_http("web", "web host")
            topo.serve_text(topo.gw, "portal", (8080,))
            extra = f"""
[source]
kind = "postgres"
[source.postgres]
dsn = "{billing.socket_dsn}"
"""
            d = DaemonProc(topo, tmp_path_factory.mktemp("gw"), [], extra_config=extra)
            d.start()
            daemons.append(d)
        yield billing, daemons


def cli(daemon: DaemonProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debtgate.cli", *args, "--socket",
                           str(daemon.workdir / "api.sock")], capture_output=True, text=True,
                          timeout=30, check=False)


def test_override_on_one_gateway_applies_on_both(two: tuple[PgServer, list[DaemonProc]]) -> None:
    billing, (gw1, gw2) = two
    added = cli(gw1, "override", "add", "A-active", "--restrict", "--reason", "abuse 17")
    assert added.returncode == 0, added.stderr
    for gw in (gw1, gw2):
        wait_for(lambda gw=gw: "100.64.1.10" in nft_set(gw.topo, "locked_v4_host"),
                 what="override on both gateways")
        assert curl(gw.topo, "act", f"http://{WEB_V4}/") == (0, "portal\n")
    listed = json.loads(cli(gw2, "override", "list", "--json").stdout)
    assert [o["account"] for o in listed] == ["A-active"]
    override_id = listed[0]["id"]
    assert cli(gw2, "override", "delete", override_id).returncode == 0
    for gw in (gw1, gw2):
        wait_for(lambda gw=gw: "100.64.1.10" not in nft_set(gw.topo, "locked_v4_host"),
                 what="override removed on both")
    audit = billing.psql("SELECT DISTINCT gateway || ':' || event FROM debtgate.audit")
    assert "override_added" in audit and "override_deleted" in audit
