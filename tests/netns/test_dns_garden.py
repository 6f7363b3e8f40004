"""Walled garden by domain: the daemon resolves it (TTL honoured) and a blocked host reaches
its addresses; when the records stop, the addresses age out of the kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.netlab import Topology, can_run

from .conftest import DaemonProc, curl, nft_set, wait_for

pytestmark = pytest.mark.netns
ZONE_SERVER = str(Path(__file__).with_name("dns_server.py"))
CDN_V4, CDN_V6, DNS_V4 = "198.18.0.31", "2001:db8:ff::31", "198.18.0.53"
BLOCKED = {"account": "B", "addresses": ["100.64.4.10"], "state": "blocked"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Topology, DaemonProc, Path]]:
    why = can_run()
    if why:
        pytest.skip(why)
    topo = Topology()
    workdir = tmp_path_factory.mktemp("dnsgarden")
    zone = workdir / "zone.json"
    zone.write_text(json.dumps({"pay.bank.example.": {"A": [CDN_V4], "AAAA": [CDN_V6],
                                                      "ttl": 2}}))
    try:
        topo.build_gateway()
        topo.add_host("sub", ["100.64.4.10"], [])
        topo.add_host("cdn", [CDN_V4], [CDN_V6], upstream=True)
        topo.add_host("dns", [DNS_V4], [], upstream=True)
        topo.serve_http("cdn", "bank payment page")
        topo.popen(topo.hosts["dns"].ns, [sys.executable, ZONE_SERVER, str(zone)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        topo.serve_text(topo.gw, "portal", (8080,))
        daemon = DaemonProc(topo, workdir, [BLOCKED], extra_config="")
        text = daemon.config_path.read_text().replace(
            'resolvers = ["198.18.0.53"]',
            'resolvers = ["198.18.0.53"]\ndomains = ["pay.bank.example"]\n'
            'dns_servers = ["198.18.0.53"]\nrefresh_min = 1\nttl_slack = 1')
        daemon.config_path.write_text(text)
        daemon.start()
        yield topo, daemon, zone
        daemon.stop()
    finally:
        topo.teardown()


def test_resolved_domain_is_open_to_blocked_host(setup: tuple[Topology, DaemonProc, Path]
                                                  ) -> None:
    topo, _, _ = setup
    wait_for(lambda: CDN_V4 in nft_set(topo, "gardendns_v4"), what="garden resolved")
    assert CDN_V6 in nft_set(topo, "gardendns_v6")
    assert curl(topo, "sub", f"http://{CDN_V4}/") == (0, "bank payment page\n")
    assert curl(topo, "sub", f"http://{CDN_V4}:443/") == (0, "bank payment page\n")
    assert curl(topo, "sub", "http://198.18.0.99/") == (0, "portal\n")  # not the garden


def test_stale_address_ages_out_when_records_change(setup: tuple[Topology, DaemonProc, Path]
                                                    ) -> None:
    topo, _, zone = setup
    wait_for(lambda: CDN_V4 in nft_set(topo, "gardendns_v4"), what="garden resolved")
    zone.write_text(json.dumps({"pay.bank.example.": {"A": ["198.18.0.32"], "ttl": 2}}))
    wait_for(lambda: "198.18.0.32" in nft_set(topo, "gardendns_v4"), deadline=6,
             what="new address")
    wait_for(lambda: CDN_V4 not in nft_set(topo, "gardendns_v4"), deadline=8,
             what="old address expired")
    assert curl(topo, "sub", f"http://{CDN_V4}/") == (0, "portal\n")
