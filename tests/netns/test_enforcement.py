"""The enforcement spine against the real kernel: namespaces, nftables, curl, scapy."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.netlab import Topology, sh

from .conftest import (
    PAY_V4,
    PAY_V6,
    SUBSCRIBERS,
    WEB_V4,
    WEB_V6,
    DaemonProc,
    curl,
    nft_set,
    wait_for,
    wait_http,
)

pytestmark = pytest.mark.netns
PROBE = str(Path(__file__).with_name("probe.py"))


@pytest.fixture(scope="module")
def daemon(topo: Topology, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProc]:
    d = DaemonProc(topo, tmp_path_factory.mktemp("daemon"), SUBSCRIBERS, reconcile_interval=1)
    d.start()
    yield d
    if d.proc and d.proc.poll() is None:
        d.stop()


@pytest.fixture
def restore(daemon: DaemonProc) -> Iterator[DaemonProc]:
    yield daemon
    daemon.write_subscribers(SUBSCRIBERS)
    wait_for(lambda: nft_set(daemon.topo, "blocked_v4_host") == {"100.64.1.11"}, what="restore")


def probe(t: Topology, host: str, kind: str, dst: str, port: int) -> str:
    return sh(sys.executable, PROBE, kind, dst, str(port), ns=t.hosts[host].ns).stdout.strip()


def test_sets_hold_each_state(daemon: DaemonProc) -> None:
    t = daemon.topo
    assert nft_set(t, "blocked_v4_host") == {"100.64.1.11"}
    assert nft_set(t, "blocked_v6_host") == {"2001:db8:100:1::11"}
    assert nft_set(t, "warn_v4_net") == {"100.64.2.0/28"}
    assert nft_set(t, "warn_v6_net") == {"2001:db8:100:200::/56"}
    assert nft_set(t, "locked_v4_host") == {"100.64.1.13"}
    assert nft_set(t, "garden_v4") == {PAY_V4}
    assert nft_set(t, "resolvers_v4") == {"198.18.0.53"}


def test_blocked_web_goes_to_portal_v4_and_v6(daemon: DaemonProc) -> None:
    t = daemon.topo
    assert curl(t, "blk", f"http://{WEB_V4}/any/path") == (0, "portal\n")
    assert curl(t, "blk", f"http://[{WEB_V6}]/") == (0, "portal\n")
    assert curl(t, "pau", f"http://{WEB_V4}/") == (0, "portal\n")


def test_blocked_https_reset_at_once_and_quic_refused(daemon: DaemonProc) -> None:
    t = daemon.topo
    started = time.monotonic()
    rc, _ = curl(t, "blk", f"https://{WEB_V4}/", timeout=5)
    assert rc == 7 and time.monotonic() - started < 2  # connection refused, no hang
    assert probe(t, "blk", "syn", WEB_V4, 443) == "RA"
    assert probe(t, "blk", "syn", WEB_V6, 443) == "RA"
    assert probe(t, "blk", "syn", WEB_V4, 853) == "RA"
    assert probe(t, "blk", "udp", WEB_V4, 443) == "icmp 3 3"  # port unreachable
    assert probe(t, "blk", "udp", WEB_V4, 5000) == "icmp 3 13"  # admin prohibited
    assert probe(t, "blk", "udp", WEB_V6, 5000) == "icmp6 1 1"


def test_garden_open_to_blocked_on_80_and_443(daemon: DaemonProc) -> None:
    t = daemon.topo
    assert curl(t, "blk", f"http://{PAY_V4}/") == (0, "payment host\n")
    assert curl(t, "blk", f"http://{PAY_V4}:443/") == (0, "payment host\n")
    assert curl(t, "blk", f"http://[{PAY_V6}]/") == (0, "payment host\n")


def test_active_reaches_everything(daemon: DaemonProc) -> None:
    t = daemon.topo
    assert curl(t, "act", f"http://{WEB_V4}/") == (0, "web host\n")
    assert curl(t, "act", f"http://{WEB_V4}:443/") == (0, "web host\n")
    assert curl(t, "act", f"http://[{WEB_V6}]/") == (0, "web host\n")
    assert probe(t, "act", "syn", WEB_V4, 443) == "SA"


def test_warned_prefix_sees_notice_for_web_only(daemon: DaemonProc) -> None:
    t = daemon.topo
    assert curl(t, "wrn", f"http://{WEB_V4}/") == (0, "portal\n")
    assert curl(t, "wrn", f"http://[{WEB_V6}]/") == (0, "portal\n")  # delegated /56
    assert curl(t, "wrn", f"http://{WEB_V4}:443/") == (0, "web host\n")  # not restricted


def test_block_cuts_established_connection_and_unblock_restores(restore: DaemonProc) -> None:
    t = restore.topo
    script = (
        "import socket,sys,time\n"
        f"s=socket.create_connection(('{WEB_V4}',80),timeout=3)\n"
        "s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); d=b''\n"
        "while b'web host' not in d: d+=s.recv(4096)\n"
        "print('open', flush=True); sys.stdin.readline()\n"
        "try:\n"
        "  s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); d=s.recv(4096)\n"
        "  print('alive' if b'web host' in d else 'cut', flush=True)\n"
        "except OSError as e: print('cut', flush=True)\n")
    proc = subprocess.Popen(["ip", "netns", "exec", t.hosts["act"].ns, sys.executable, "-c",
                             script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "open"
    subs = [dict(s, state="blocked") if s["account"] == "A-active" else s for s in SUBSCRIBERS]
    restore.write_subscribers(subs)
    wait_for(lambda: "100.64.1.10" in nft_set(t, "blocked_v4_host"), what="block applied")
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "cut"
    proc.wait(5)
    assert curl(t, "act", f"http://{WEB_V4}/") == (0, "portal\n")
    # Unblock: the next request reaches the real web host, not the portal.
    restore.write_subscribers(SUBSCRIBERS)
    wait_for(lambda: "100.64.1.10" not in nft_set(t, "blocked_v4_host"), what="unblock")
    assert curl(t, "act", f"http://{WEB_V4}/") == (0, "web host\n")


def test_edit_takes_effect_within_a_second(restore: DaemonProc) -> None:
    t = restore.topo
    subs = [dict(s, state="active") if s["account"] == "A-blocked" else s for s in SUBSCRIBERS]
    started = time.monotonic()
    restore.write_subscribers(subs)
    wait_http(t, "blk", f"http://{WEB_V4}/", want="web host", deadline=3)
    assert time.monotonic() - started < 1.5


def test_flushed_set_is_repaired_by_reconcile(daemon: DaemonProc) -> None:
    t = daemon.topo
    sh("nft", "flush", "set", "inet", "debtgate", "blocked_v4_host", ns=t.gw)
    wait_for(lambda: nft_set(t, "blocked_v4_host") == {"100.64.1.11"}, deadline=5,
             what="drift repaired")
    assert "differs from the desired state by 1 elements" in daemon.log()
    assert "by 4 elements" not in daemon.log()  # the garden is not re-added every time


def test_garbage_rows_rejected_good_rows_applied(restore: DaemonProc) -> None:
    t = restore.topo
    bad = [
        {"account": "X1", "addresses": ["not-an-ip"], "state": "blocked"},
        {"account": "X2", "addresses": ["100.0.0.0/8"], "state": "blocked"},
        {"account": "X3", "addresses": ["100.64.9.9"], "state": "owing"},
        {"account": "X4", "addresses": ["100.64.1.11"], "state": "blocked"},  # taken
        {"addresses": ["100.64.9.10"], "state": "blocked"},
        "garbage",
        {"account": "X6", "addresses": ["100.64.9.11"], "state": "blocked"},
    ]
    restore.write_subscribers(SUBSCRIBERS + bad)
    wait_for(lambda: "100.64.9.11" in nft_set(t, "blocked_v4_host"), what="good row applied")
    log = wait_for(lambda: (lambda s: s if "reason=bad_row" in s else None)(restore.log()),
                   what="all rejections logged")
    for reason in ("bad_address", "prefix_too_wide", "unknown_state", "address_conflict",
                   "missing_field", "bad_row"):
        assert f"reason={reason}" in log
    assert nft_set(t, "blocked_v4_host") == {"100.64.1.11", "100.64.9.11"}
    assert restore.proc is not None and restore.proc.poll() is None


def test_broken_file_keeps_last_good_state(restore: DaemonProc) -> None:
    t = restore.topo
    restore.subs_path.write_text("{ this is not json")
    wait_for(lambda: "unusable" in restore.log(), what="error reported")
    assert nft_set(t, "blocked_v4_host") == {"100.64.1.11"}
    assert curl(t, "blk", f"http://{WEB_V4}/") == (0, "portal\n")


def test_restart_changes_nothing_and_opens_no_gap(daemon: DaemonProc) -> None:
    t = daemon.topo
    before = sh("nft", "list", "table", "inet", "debtgate", ns=t.gw).stdout
    monitor = subprocess.Popen(["ip", "netns", "exec", t.gw, "nft", "monitor"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stop() == 0
        assert nft_set(t, "blocked_v4_host") == {"100.64.1.11"}  # exit leaves enforcement
        assert curl(t, "blk", f"http://{WEB_V4}/") == (0, "portal\n")
        daemon.start()
        time.sleep(0.5)
    finally:
        monitor.terminate()
        events, _ = monitor.communicate(timeout=5)
    assert "delete element" not in events and "flush" not in events
    after = sh("nft", "list", "table", "inet", "debtgate", ns=t.gw).stdout
    assert after == before


def test_other_tables_untouched(daemon: DaemonProc) -> None:
    t = daemon.topo
    sh("nft", "add", "table", "inet", "operator", ns=t.gw)
    sh("nft", "add", "chain", "inet", "operator", "c", ns=t.gw)
    daemon.stop()
    daemon.start()
    tables = sh("nft", "list", "tables", ns=t.gw).stdout
    assert "table inet operator" in tables
    sh("nft", "delete", "table", "inet", "operator", ns=t.gw)


@pytest.mark.parametrize("web", [WEB_V4, WEB_V6])
def test_unblock_cuts_keepalive_to_the_portal(restore: DaemonProc, web: str) -> None:
    """Without the conntrack cut the old DNAT mapping would keep the subscriber talking to
    the portal on an open keep-alive connection; with it, the connection is gone."""
    t = restore.topo
    script = (
        "import socket,sys\n"
        f"s=socket.create_connection(('{web}',80),timeout=3)\n"
        "def ask():\n"
        "  s.sendall(b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'); d=b''\n"
        "  while not d.rstrip().endswith((b'portal', b'host')):\n"
        "    c=s.recv(4096)\n"
        "    if not c: raise OSError('closed')\n"
        "    d+=c\n"
        "  return d\n"
        "print('portal' if b'portal' in ask() else 'web', flush=True); sys.stdin.readline()\n"
        "try: print('portal' if b'portal' in ask() else 'web', flush=True)\n"
        "except OSError: print('cut', flush=True)\n")
    proc = subprocess.Popen(["ip", "netns", "exec", t.hosts["blk"].ns, sys.executable, "-c",
                             script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "portal"
    restore.write_subscribers([dict(s, state="active") if s["account"] == "A-blocked" else s
                               for s in SUBSCRIBERS])
    wait_for(lambda: "100.64.1.11" not in nft_set(t, "blocked_v4_host"), what="unblock")
    time.sleep(0.3)  # the cut follows the commit
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "cut"
    proc.wait(5)
    assert curl(t, "blk", f"http://{'[' + web + ']' if ':' in web else web}/") == (
        0, "web host\n")
