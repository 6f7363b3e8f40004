"""Fixtures for tests against the real kernel: namespaces, a running daemon, curl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.netlab import PORTAL_V4, PORTAL_V6, Topology, can_run, sh

WEB_V4, WEB_V6 = "198.18.0.10", "2001:db8:ff::10"
PAY_V4, PAY_V6 = "198.18.0.20", "2001:db8:ff::20"

SUBSCRIBERS = [
    {"account": "A-active", "addresses": ["100.64.1.10", "2001:db8:100:1::10"], "state": "active"},
    {"account": "A-blocked", "addresses": ["100.64.1.11", "2001:db8:100:1::11"],
     "state": "blocked", "amount_due": "1250.00", "since": "2026-11-01"},
    {"account": "A-warn", "addresses": ["100.64.2.0/28", "2001:db8:100:200::/56"],
     "state": "warn", "amount_due": "300", "block_at": "2026-11-30"},
    {"account": "A-paused", "addresses": ["100.64.1.13"], "state": "paused"},
]

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    why = can_run()
    if why:
        pytest.skip(why)
    t = Topology()
    try:
        t.build_gateway()
        t.add_host("act", ["100.64.1.10"], ["2001:db8:100:1::10"])
        t.add_host("blk", ["100.64.1.11"], ["2001:db8:100:1::11"])
        t.add_host("wrn", ["100.64.2.1"], ["2001:db8:100:200::1"])
        t.add_host("pau", ["100.64.1.13"], [])
        t.add_host("web", [WEB_V4], [WEB_V6], upstream=True)
        t.add_host("pay", [PAY_V4], [PAY_V6], upstream=True)
        t.serve_http("web", "web host")
        t.serve_http("pay", "payment host")
        # The portal stand-in: answers on the portal addresses in the gateway.
        t.serve_text(t.gw, "portal", (8080,))
        wait_http(t, "web", f"http://{WEB_V4}/")
        yield t
    finally:
        t.teardown()


def curl(t: Topology, host: str, url: str, timeout: float = 3, extra: tuple[str, ...] = ()
         ) -> tuple[int, str]:
    """(curl exit code, body); -g so IPv6 literals work."""
    proc = sh("curl", "-gs", "--max-time", str(timeout), *extra, url, ns=t.hosts[host].ns,
              check=False, timeout=timeout + 5)
    return proc.returncode, proc.stdout


def wait_http(t: Topology, host: str, url: str, want: str | None = None,
              deadline: float = 10) -> str:
    end = time.monotonic() + deadline
    body = ""
    while time.monotonic() < end:
        rc, body = curl(t, host, url, timeout=1)
        if rc == 0 and (want is None or want in body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} from {host}: wanted {want!r}, last body {body!r}")


class DaemonProc:
    def __init__(self, topo: Topology, workdir: Path, subscribers: list[dict[str, object]],
                 extra_config: str = "", reconcile_interval: float = 300) -> None:
        self.topo = topo
        self.workdir = workdir
        self.subs_path = workdir / "subscribers.json"
        self.config_path = workdir / "debtgate.toml"
        self.log_path = workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.write_subscribers(subscribers)
        self.config_path.write_text(f"""
[daemon]
state_dir = "{workdir}/state"
reconcile_interval = {reconcile_interval}
log_level = "debug"
[source.file]
path = "{self.subs_path}"
poll_interval = 0.1
[network]
serves = ["100.64.0.0/16", "2001:db8:100::/40"]
[nft]
portal_v4 = "{PORTAL_V4}"
portal_v6 = "{PORTAL_V6}"
portal_port = 8080
ack_timeout = 5
[garden]
cidrs = ["{PAY_V4}/32", "{PAY_V6}/128"]
resolvers = ["198.18.0.53"]
[api]
socket = "{workdir}/api.sock"
portal_socket = "{workdir}/portal.sock"
{extra_config}
""")

    def write_subscribers(self, subs: list[dict[str, object]]) -> None:
        tmp = self.subs_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(subs))
        os.replace(tmp, self.subs_path)

    def start(self, synced: bool = True) -> None:
        """Start the daemon; return once it is ready and (``synced``) its first snapshot
        is applied."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = self.topo.popen(
            self.topo.gw, [sys.executable, "-m", "debtgate.cli", "run", "--config",
                           str(self.config_path)], stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            text = self.log_path.read_bytes()[offset:].decode(errors="replace")
            # Ready before the first snapshot is applied (a PostgreSQL billing): the
            # tests start from a synced daemon.
            if " synced: " in text or (" ready: " in text and (
                    not synced or "the first snapshot is being applied" not in text)):
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise AssertionError(f"daemon not ready:\n{self.log_path.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def postgres_config(dsn: str, more: str = "") -> str:
    """The config lines of a daemon fed by a PostgreSQL billing (``more``: lines of
    ``[source.postgres]`` or sections after it)."""
    return f"""
[source]
kind = "postgres"
[source.postgres]
dsn = "{dsn}"
coalesce_ms = 10
{more}"""


def nft_set(t: Topology, name: str) -> set[str]:
    out = sh("nft", "-j", "list", "set", "inet", "debtgate", name, ns=t.gw).stdout
    elems: set[str] = set()
    for obj in json.loads(out)["nftables"]:
        for item in obj.get("set", {}).get("elem", []):
            if isinstance(item, dict) and "elem" in item:
                item = item["elem"]["val"]
            if isinstance(item, dict) and "prefix" in item:
                item = f"{item['prefix']['addr']}/{item['prefix']['len']}"
            elems.add(str(item))
    return elems


def wait_for(pred, deadline: float = 5, what: str = "condition"):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
