"""The real ``debtgate run`` in a private network namespace (its own nft table and
loopback), with RADIUS towards a real UDP peer (ACK/NAK) and a silent NAS; scraped and
asked over its management socket with the real CLI.

* every metric the Grafana dashboard and the alert rules use has a sample;
* a silent NAS shows as degraded (status, ``debtgate status``, ``debtgate_degraded``);
* ``debtgate status`` says whether the daemon is in sync with billing, and why not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
SECRET = "s3cret-nas-0123456789"
METRIC = re.compile(r"\bdebtgate_[a-z0-9_]+")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nft") is None
    or shutil.which("ip") is None, reason="needs root, unshare, ip and nft")


def used_metrics() -> set[str]:
    """Metric names in the dashboard's and the alert rules' expressions."""
    names: set[str] = set()
    for path in (ROOT / "examples/grafana/debtgate-dashboard.json",
                 ROOT / "examples/prometheus/alerts.yml"):
        names |= set(METRIC.findall(path.read_text()))
    assert len(names) > 10
    return names


def sub(account: str, n: int, state: str = "active", **extra: object) -> dict[str, object]:
    return {"account": account, "addresses": [f"100.64.0.{n}"], "state": state, **extra}


class Daemon:
    def __init__(self, workdir: Path, subscribers: list[dict[str, object]] | None) -> None:
        self.workdir = workdir
        self.subs = workdir / "subscribers.json"
        self.socket = workdir / "api.sock"
        self.log = workdir / "daemon.log"
        if subscribers is not None:
            self.write(subscribers)
        secret = workdir / "nas.secret"
        secret.write_text(SECRET + "\n")
        secret.chmod(0o600)
        self.config = workdir / "debtgate.toml"
        self.config.write_text(f"""
[daemon]
state_dir = "{workdir}/state"
log_level = "debug"
[source.file]
path = "{self.subs}"
poll_interval = 0.1
[network]
serves = ["100.64.0.0/16"]
[nft]
portal_v4 = "10.255.255.1"
portal_port = 8080
[garden]
cidrs = ["198.51.100.0/28"]
domains = ["pay.example.invalid"]
dns_servers = ["127.0.0.1"]
[api]
socket = "{self.socket}"
portal_socket = "{workdir}/portal.sock"
[radius]
enabled = true
[[radius.nas]]
name = "bras-1"
address = "127.0.0.1"
port = 3799
secret_file = "{secret}"
profile = "mikrotik"
rate = 2
burst = 1
timeout = 0.5
retries = 0
[[radius.nas]]
name = "bras-2"
address = "127.0.0.1"
port = 3800
secret_file = "{secret}"
profile = "mikrotik"
timeout = 0.3
retries = 0
degraded_after = 1
""")
        script = (f"ip link set lo up && {sys.executable} {HERE / 'nas_responder.py'} "
                  f"{SECRET} 3799 & ip link set lo up && exec {sys.executable} -m debtgate.cli "
                  f"run --config {self.config}")
        self.proc = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", script],
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def write(self, subscribers: list[dict[str, object]]) -> None:
        tmp = self.subs.with_suffix(".tmp")
        tmp.write_text(json.dumps(subscribers))
        os.replace(tmp, self.subs)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "debtgate.cli", *args, "--socket",
                               str(self.socket)], capture_output=True, text=True, timeout=30)

    def status(self) -> dict[str, Any]:
        out = self.cli("status", "--json")
        assert out.returncode == 0, out.stderr
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited:\n{self.log.read_text()}")
            try:
                if predicate():
                    return
            except (AssertionError, OSError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{what} not reached:\n{self.log.read_text()[-4000:]}")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # the namespace's shell, daemon and peer
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dgrun", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def scrape(socket: Path) -> dict[str, list[Any]]:
    import asyncio  # noqa: PLC0415

    async def get() -> str:
        conn = aiohttp.UnixConnector(path=str(socket))
        async with aiohttp.ClientSession(connector=conn) as s, s.get("http://x/metrics") as r:
            assert r.status == 200
            return await r.text()

    body = asyncio.run(get())
    samples: dict[str, list[Any]] = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def test_metrics_degraded_nas_and_sync(workdir: Path) -> None:
    subs = [sub("A1", 1, nas="bras-1", session_id="s-1"),
            sub("A2", 2, nas="bras-1", session_id="nak-2"),
            sub("A3", 3, nas="bras-1", session_id="s-3"),
            sub("A4", 4, nas="bras-2", session_id="s-4"),
            sub("A5", 5), {"account": "BAD", "addresses": ["not-an-address"],
                           "state": "active"}]
    d = Daemon(workdir, subs)
    try:
        d.wait(lambda: d.status()["sync"]["in_sync"], "first sync")
        text = d.cli("status").stdout
        assert "in sync with billing" in text and "not in sync" not in text, text
        # transitions: CoA towards bras-1 (ACK, NAK 503, paced at 2/s) and the silent bras-2
        d.write([{**s, "state": "blocked"} if s["account"] in ("A1", "A2", "A3", "A4") else s
                 for s in subs])
        d.wait(lambda: d.status()["radius"]["bras-1"]["ack"] >= 2
               and "radius:bras-2" in d.status()["degraded"], "CoA results and degraded")
        st = d.status()
        assert "radius:bras-1" not in st["degraded"]
        assert st["degraded"]["radius:bras-2"].startswith("no answer for ")
        text = d.cli("status").stdout
        assert "degraded    YES" in text and "radius:bras-2: no answer for" in text, text

        samples = scrape(d.socket)
        missing = sorted(n for n in used_metrics() if not samples.get(n))
        assert not missing, f"used by the dashboard/alerts, no sample: {missing}"
        degraded = {s.labels["component"]: s.value for s in samples["debtgate_degraded"]}
        assert degraded.get("radius:bras-2") == 1
        latency = {s.labels["nas"]: s.value for s in samples["debtgate_radius_latency_seconds"]}
        assert 0 < latency["bras-1"] < 1 and "bras-2" not in latency
        assert {s.labels["nas"] for s in samples["debtgate_radius_queue_eta_seconds"]} == {
            "bras-1", "bras-2"}

        # a mass change: the guard holds it, the daemon is not in sync with billing
        many = subs[:5] + [sub(f"M{i}", 10 + i) for i in range(40)]
        d.write(many)
        d.wait(lambda: d.status()["subscribers"].get("active", 0) >= 44, "more subscribers")
        d.write([{**s, "state": "blocked"} if str(s["account"]).startswith("M") else s
                 for s in many])
        d.wait(lambda: d.status()["guard"]["holding"], "guard holding")
        text = d.cli("status").stdout
        assert re.search(r"not in sync with billing: mass-change guard holding \d+ "
                         r"restrictions", text), text
        samples = scrape(d.socket)
        assert samples["debtgate_guard_held_restrictions"][0].value >= 10
    finally:
        d.stop()


def test_status_not_in_sync_before_first_sync(workdir: Path) -> None:
    d = Daemon(workdir, None)  # the billing file does not exist: nothing to sync from
    try:
        d.wait(lambda: d.socket.exists() and d.cli("status").returncode == 0, "api up")
        text = d.cli("status").stdout
        assert "not in sync with billing: never synced with billing yet" in text, text
        assert d.status()["sync"] == {"in_sync": False,
                                      "reason": d.status()["sync"]["reason"]}
        d.write([sub("A1", 1)])
        d.wait(lambda: d.status()["sync"]["in_sync"], "sync after the file appears")
        assert "billing     in sync with billing" in d.cli("status").stdout
    finally:
        d.stop()
