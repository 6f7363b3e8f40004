"""OS detection probes end to end: the real ruleset's DNAT, the real unprivileged portal
and daemon. A probe the gateway DNATs to the portal gets the sign-in answer without a
question to the daemon; a probe sent to the portal directly is asked about."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .lab_fixture import Lab, lab  # noqa: F401

pytestmark = pytest.mark.netns
WEB_V4, WEB_V6 = "198.18.0.10", "[2001:db8:ff::10]"
PORTAL = "http://10.255.255.1:8080/"
PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204"),
    ("captive.apple.com", "/hotspot-detect.html"),
    ("www.msftconnecttest.com", "/connecttest.txt"),
]


def views(lab: Lab) -> int:  # noqa: F811
    out = subprocess.run([sys.executable, "-m", "debtgate.cli", "status", "--json", "--socket",
                          str(lab.workdir / "api.sock")], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return int(json.loads(out)["portal"]["views"])


def probe(lab: Lab, host: str, target: str, probe_host: str) -> str:  # noqa: F811
    rc, head = lab.curl(host, target, "-si", "-H", f"Host: {probe_host}")
    assert rc == 0, (host, target)
    return head


@pytest.mark.parametrize("host", ["blk", "pau", "dis", "wrn"])
def test_dnated_probes_open_sign_in_without_asking_the_daemon(lab: Lab, host: str) -> None:  # noqa: F811
    before = views(lab)
    for probe_host, path in PROBES:
        head = probe(lab, host, f"http://{WEB_V4}{path}", probe_host)
        assert head.startswith("HTTP/1.1 302"), head
        assert f"Location: {PORTAL}\n" in head
        assert "Connection: close" in head and "Cache-Control: no-store" in head
    assert views(lab) == before


def test_dnated_ipv6_probe_opens_sign_in_without_asking(lab: Lab) -> None:  # noqa: F811
    before = views(lab)
    head = probe(lab, "blk", f"http://{WEB_V6}/generate_204", "connectivitycheck.gstatic.com")
    assert head.startswith("HTTP/1.1 302") and f"Location: {PORTAL}\n" in head
    assert views(lab) == before


def test_probe_sent_to_the_portal_directly_is_asked_about(lab: Lab) -> None:  # noqa: F811
    # an active host is not DNATed; addressing the portal itself with a probe's Host,
    # it is asked about and told it is online
    before = views(lab)
    head = probe(lab, "act", f"{PORTAL}generate_204", "connectivitycheck.gstatic.com")
    assert head.startswith("HTTP/1.1 204"), head
    assert views(lab) == before + 1
    # so is a restricted host doing the same (no DNAT on the portal's own address)
    head = probe(lab, "blk", f"{PORTAL}hotspot-detect.html", "captive.apple.com")
    assert head.startswith("HTTP/1.1 302") and f"Location: {PORTAL}\n" in head


def test_active_host_probes_reach_the_internet(lab: Lab) -> None:  # noqa: F811
    rc, body = lab.curl("act", f"http://{WEB_V4}/generate_204", "-s",
                        "-H", "Host: connectivitycheck.gstatic.com")
    assert rc == 0 and body.startswith("web host")
