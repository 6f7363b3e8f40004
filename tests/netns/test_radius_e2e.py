"""End to end: a billing change produces both the nft change and the right CoA/Disconnect,
sent by the real daemon to a real FreeRADIUS acting as the NAS (in the gateway namespace)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.netlab import Topology, can_run

from .conftest import DaemonProc, nft_set, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.radius]
sys.path.insert(0, str(Path(__file__).parents[1] / "integration" / "radius"))

SECRET = "e2e-secret"
ROW = {"account": "R1", "addresses": ["100.64.3.10"], "state": "active", "nas": "bras1",
       "session_id": "sess-r1", "user_name": "r1@isp"}


@pytest.fixture(scope="module")
def nas_and_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, DaemonProc]]:
    why = can_run()
    if why:
        pytest.skip(why)
    import freeradius  # the FreeRADIUS CoA server helper of tests/integration/radius

    if freeradius.BINARY is None:
        pytest.skip("freeradius not installed (bash examples/install.sh --test)")
    topo = Topology()
    workdir = tmp_path_factory.mktemp("radius-e2e")
    real = freeradius.BINARY
    try:
        topo.build_gateway()
        topo.add_host("sub", ["100.64.3.10"], [])
        wrapper = workdir / "freeradius-in-gw"
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {topo.gw} {real} \"$@\"\n")
        wrapper.chmod(0o755)
        freeradius.BINARY = str(wrapper)
        port = 23799
        nas = freeradius.FreeRadius(workdir / "fr", SECRET, port, ["sess-r1"])
        nas.start()
        (workdir / "nas.secret").write_text(SECRET + "\n")
        daemon = DaemonProc(topo, workdir, [ROW], extra_config=f"""
[radius]
enabled = true
[[radius.nas]]
name = "bras1"
address = "127.0.0.1"
port = {port}
secret_file = "{workdir}/nas.secret"
profile = "mikrotik"
timeout = 0.5
retries = 2
""")
        daemon.start()
        yield nas, daemon
        daemon.stop()
        nas.stop()
    finally:
        freeradius.BINARY = real
        topo.teardown()


def test_block_sends_coa_and_sets_nft(nas_and_daemon: tuple[object, DaemonProc]) -> None:
    nas, daemon = nas_and_daemon
    daemon.write_subscribers([dict(ROW, state="blocked")])
    wait_for(lambda: "100.64.3.10" in nft_set(daemon.topo, "blocked_v4_host"), what="nft block")
    packets = nas.received(wait=5, count=1)  # type: ignore[attr-defined]
    coa = [p for p in packets if p["type"] == "CoA-Request"]
    assert coa, packets
    attrs = dict(coa[-1]["attrs"])
    assert attrs["Acct-Session-Id"] == "sess-r1"
    assert "Mikrotik-Address-List" in attrs
    assert "Message-Authenticator" in attrs and "Event-Timestamp" in attrs


def test_payment_sends_disconnect_and_lifts_nft(nas_and_daemon: tuple[object, DaemonProc]
                                                ) -> None:
    nas, daemon = nas_and_daemon
    daemon.write_subscribers([dict(ROW, state="blocked")])
    wait_for(lambda: "100.64.3.10" in nft_set(daemon.topo, "blocked_v4_host"), what="block")
    daemon.write_subscribers([ROW])
    wait_for(lambda: "100.64.3.10" not in nft_set(daemon.topo, "blocked_v4_host"),
             what="unblock")
    packets = nas.received(wait=5, count=2)  # type: ignore[attr-defined]
    dm = [p for p in packets if p["type"] == "Disconnect-Request"]
    assert dm, packets
    assert dict(dm[-1]["attrs"])["Acct-Session-Id"] == "sess-r1"
