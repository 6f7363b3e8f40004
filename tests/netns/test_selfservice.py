"""Self-service end to end: real kernel, real PostgreSQL billing (reference schema), the
real daemon and unprivileged portal, headless Chromium in the subscribers' namespaces.

A blocked host promises to pay and browses; its second promise in the period is
refused with the reason; a paused host resumes; the webhook billing refusing, failing,
timing out and being unreachable is shown politely and changes nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.netlab import PORTAL_V4, PORTAL_V6, Topology, can_run
from tests.pgserver import PgServer, require_pg

from .conftest import WEB_V4, DaemonProc, curl, nft_set, wait_for, wait_http

pytestmark = [pytest.mark.netns, pytest.mark.postgres, pytest.mark.chromium]
HELPERS = str(Path(__file__).with_name("selfservice_helpers.py"))
ARTIFACTS = Path("artifacts/screenshots")
WEB = f"http://{WEB_V4}/news"
HOOK_PORT = 8765


class Lab:
    def __init__(self, topo: Topology, workdir: Path, billing: PgServer, daemon: DaemonProc):
        self.topo, self.workdir, self.billing, self.daemon = topo, workdir, billing, daemon
        self.mode_file = workdir / "hook.mode"
        self.browsers: dict[str, subprocess.Popen[str]] = {}

    def config(self, hook: str) -> str:
        w = self.workdir
        return f"""
[daemon]
state_dir = "{w}/state"
log_level = "debug"
[source]
kind = "postgres"
[source.postgres]
dsn = "{self.billing.socket_dsn}"
coalesce_ms = 10
heartbeat_interval = 1
[network]
serves = ["100.64.0.0/16", "2001:db8:100::/40"]
[nft]
portal_v4 = "{PORTAL_V4}"
portal_v6 = "{PORTAL_V6}"
portal_port = 8080
[api]
socket = "{w}/api.sock"
portal_socket = "{w}/portal.sock"
portal_socket_group = "nogroup"
[portal]
listen = ""
port = 8080
public_url = "http://{PORTAL_V4}:8080/"
operator_name = "Lab ISP"
poll_interval = 1
cache_ttl = 0.2
[portal.contacts]
phone = "+7 800 000-00-00"
[selfservice.promise]
enabled = true
days = 5
max_debt = 5000
[selfservice.resume]
enabled = true
[selfservice.limits]
per_address = 50
per_account = 50
[selfservice.hook]
{hook}
"""

    def reconfigure(self, hook: str) -> None:
        mark = self.daemon.log().count("self-service (its hook replaced)")
        self.daemon.config_path.write_text(self.config(hook))
        assert self.daemon.proc is not None
        self.daemon.proc.send_signal(1)  # SIGHUP
        wait_for(lambda: self.daemon.log().count("self-service (its hook replaced)") > mark,
                 deadline=5, what="the reload")

    def browser(self, host: str) -> subprocess.Popen[str]:
        if host not in self.browsers:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.topo.hosts[host].ns, sys.executable, HELPERS,
                 "browser", str(ARTIFACTS.resolve())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            assert json.loads(proc.stdout.readline())["ready"]
            self.browsers[host] = proc
        return self.browsers[host]

    def do(self, host: str, **cmd: object) -> dict[str, str]:
        proc = self.browser(host)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()
        out = json.loads(proc.stdout.readline())
        assert out["ok"], out
        return out

    def redirected(self, host: str = "blk") -> bool:
        """The host's next web request goes to the portal (302), not to the web host."""
        rc, code = curl(self.topo, host, f"http://{WEB_V4}/",
                        extra=("-o", "/dev/null", "-w", "%{http_code}"))
        return rc == 0 and code == "302"

    def requests(self, action: str = "promise") -> int:
        return int(self.billing.psql("SELECT count(*) FROM billing.selfservice_requests "
                                     f"WHERE action = '{action}'", "-At").strip())


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    why = can_run()
    if why:
        pytest.skip(why)
    require_pg()
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="debtgate-ss-"))
    workdir.chmod(0o755)
    billing = PgServer(workdir / "pg")
    topo = Topology()
    lab = None
    try:
        billing.start()
        billing.load_schema(sample=True)
        billing.psql("UPDATE billing.selfservice_policy SET promise_per_period = 1")
        topo.build_gateway()
        topo.add_host("blk", ["100.64.1.11"], ["2001:db8:100:1::11"])
        topo.add_host("pau", ["100.64.1.13"], [])
        topo.add_host("web", [WEB_V4], [], upstream=True)
        topo.serve_http("web", "web host")
        daemon = DaemonProc(topo, workdir, [])
        lab = Lab(topo, workdir, billing, daemon)
        daemon.config_path.write_text(lab.config('kind = "sql"'))
        daemon.start()
        (workdir / "hook.secret").write_text("a-webhook-secret-for-the-lab\n")
        lab.mode_file.write_text("ok")
        topo.popen(topo.gw, ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-m",
                             "debtgate.cli", "portal", "--config", str(daemon.config_path)],
                   stdout=open(workdir / "portal.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        topo.popen(topo.gw, [sys.executable, HELPERS, "webhook", str(HOOK_PORT),
                             str(workdir / "hook.secret"), str(lab.mode_file)])
        wait_http(topo, "blk", f"http://{PORTAL_V4}:8080/api/state", want="blocked")
        yield lab
    finally:
        if lab is not None:
            for proc in lab.browsers.values():
                proc.kill()
                proc.wait(5)
        topo.teardown()
        for name in ("daemon.log", "portal.log"):
            if (workdir / name).exists():
                Path("artifacts").mkdir(exist_ok=True)
                shutil.copy(workdir / name, Path("artifacts") / f"selfservice-{name}")
        billing.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_promise_lifts_the_block_once_per_period(lab: Lab) -> None:
    page = lab.do("blk", op="goto", url=WEB, shot="selfservice-promise-offer")
    assert page["url"].startswith(f"http://{PORTAL_V4}:8080/")
    assert "Не получается оплатить сейчас?" in page["text"]
    assert "Доступно 1 раз в 30 дней." in page["text"]
    started = time.monotonic()
    page = lab.do("blk", op="click", selector="form#promise button", double=True)
    assert "done=promise-ok" in page["url"]
    assert "Обещанный платёж принят" in page["text"]
    if "Интернет работает" not in page["text"]:  # the change had not arrived yet: the poll
        page = lab.do("blk", op="wait", selector="#online", shot="selfservice-promise-online")
        assert "Интернет снова работает" in page["text"]
    assert time.monotonic() - started < 5
    assert lab.do("blk", op="goto", url=WEB)["text"].startswith("web host")
    assert "100.64.1.11" not in nft_set(lab.topo, "blocked_v4_host")
    assert lab.requests() == 1  # three submissions of one page are one promise
    assert lab.daemon.log().count("repeated request id, same answer") == 2
    # The credit expires: blocked again; a second promise in the period is refused.
    lab.billing.psql("UPDATE accounts SET credit_until = now() - interval '1 s' "
                     "WHERE id = 'A-blocked'; SELECT billing.expire_selfservice()")
    wait_for(lambda: "100.64.1.11" in nft_set(lab.topo, "blocked_v4_host"), deadline=3,
             what="the block after the credit")
    # The portal caches a view for at most cache_ttl (2 s): wait until it says blocked.
    wait_http(lab.topo, "blk", f"http://{PORTAL_V4}:8080/api/state", want='"blocked"',
              deadline=5)
    lab.do("blk", op="goto", url=WEB)
    page = lab.do("blk", op="click", selector="form#promise button",
                  shot="selfservice-promise-refused")
    assert "done=promise-limit" in page["url"]
    assert "Обещанный платёж уже был использован недавно" in page["text"]
    assert "100.64.1.11" in nft_set(lab.topo, "blocked_v4_host") and lab.redirected("blk")


def test_paused_host_resumes(lab: Lab) -> None:
    page = lab.do("pau", op="goto", url=WEB)
    assert "Resume service now" in page["text"]
    page = lab.do("pau", op="click", selector="form#resume button")
    assert "Welcome back!" in page["text"] or "You're online" in page["text"]
    if "You're online" not in page["text"]:
        lab.do("pau", op="wait", selector="#online")
    assert lab.do("pau", op="goto", url=WEB)["text"].startswith("web host")
    assert lab.requests("resume") == 1


@pytest.mark.parametrize(("mode", "words"), [
    ("refuse", "Обещанный платёж недоступен на вашем тарифе."),
    ("error", "Сейчас не получилось связаться с нашей биллинговой системой"),
    ("slow", "Сейчас не получилось связаться с нашей биллинговой системой"),
    ("down", "Сейчас не получилось связаться с нашей биллинговой системой"),
])
def test_webhook_billing_failures_are_polite_and_change_nothing(lab: Lab, mode: str,
                                                                words: str) -> None:
    secret = lab.workdir / "hook.secret"
    port = 9 if mode == "down" else HOOK_PORT  # nobody listens on port 9: unreachable
    hook = (f'kind = "http"\nurl = "http://127.0.0.1:{port}/hook"\n'
            f'secret_file = "{secret}"\ntimeout = 1')
    if f"127.0.0.1:{port}" not in lab.daemon.config_path.read_text():
        lab.reconfigure(hook)
    lab.mode_file.write_text(mode)
    before = lab.billing.psql("SELECT * FROM accounts ORDER BY id", "-At")
    lab.do("blk", op="goto", url=WEB)
    page = lab.do("blk", op="click", selector="form#promise button",
                  shot=f"selfservice-webhook-{mode}")
    assert words in page["text"], page["text"]
    assert "ничего не изменилось" in page["text"] or mode == "refuse"
    assert "100.64.1.11" in nft_set(lab.topo, "blocked_v4_host")
    assert lab.redirected("blk")
    assert lab.billing.psql("SELECT * FROM accounts ORDER BY id", "-At") == before
    calls = (lab.workdir / "hook.mode.log")
    if mode != "down":
        last = json.loads(calls.read_text().splitlines()[-1])
        assert (last["mode"], last["action"], last["account"]) == (mode, "promise", "A-blocked")
