"""``debtgate lab``: the whole picture on one machine, in network namespaces.

A gateway namespace runs the daemon (and the portal); subscriber namespaces
hold hosts in each state (IPv4 and IPv6, one with a delegated prefix); an
upstream web host and a payment host in the walled garden answer HTTP. Edits to
the subscriber file take effect live; Ctrl-C tears everything down.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from debtgate_lab.netlab import PORTAL_V4, PORTAL_V6, Topology, sh

WEB = ("198.18.0.10", "2001:db8:ff::10")
PAY = ("198.18.0.20", "2001:db8:ff::20")

HOSTS: list[dict[str, Any]] = [
    {"ns": "act", "v4": ["100.64.1.10"], "v6": ["2001:db8:100:1::10"],
     "row": {"account": "100001", "state": "active", "name": "Ivan Petrov", "language": "ru",
             "addresses": ["100.64.1.10", "2001:db8:100:1::10"]}},
    {"ns": "blk", "v4": ["100.64.1.11"], "v6": ["2001:db8:100:1::11"],
     "row": {"account": "100002", "state": "blocked", "amount_due": "1250.00", "currency": "RUB",
             "since": "2026-11-01", "name": "Anna Smirnova", "language": "ru",
             "addresses": ["100.64.1.11", "2001:db8:100:1::11"]}},
    {"ns": "wrn", "v4": ["100.64.2.1"], "v6": ["2001:db8:100:200::1"],
     "row": {"account": "100003", "state": "warn", "amount_due": "300", "currency": "RUB",
             "block_at": "2026-12-01", "name": "Acme LLC", "language": "en",
             "addresses": ["100.64.2.0/28", "2001:db8:100:200::/56"]}},
    {"ns": "pau", "v4": ["100.64.1.13"], "v6": [],
     "row": {"account": "100004", "state": "paused", "name": "Olga", "language": "ru",
             "addresses": ["100.64.1.13"]}},
    {"ns": "dis", "v4": ["100.64.1.14"], "v6": [],
     "row": {"account": "100005", "state": "disabled", "language": "en",
             "addresses": ["100.64.1.14"]}},
]


def lab_config(workdir: Path, source: str, ack_timeout: int = 120, dsn: str = "") -> str:
    postgres = f'''[source.postgres]
dsn = "{dsn}"
[selfservice.promise]
enabled = true
days = 3
[selfservice.resume]
enabled = true
''' if dsn else ""
    return f"""# debtgate lab configuration (generated)
[daemon]
state_dir = "{workdir}/state"
reconcile_interval = 60
[source]
kind = "{source}"
[source.file]
path = "{workdir}/subscribers.json"
{postgres}[network]
serves = ["100.64.0.0/16", "2001:db8:100::/40"]
[nft]
portal_v4 = "{PORTAL_V4}"
portal_v6 = "{PORTAL_V6}"
portal_port = 8080
ack_timeout = {ack_timeout}
[garden]
cidrs = ["{PAY[0]}/32", "{PAY[1]}/128"]
resolvers = ["198.18.0.53"]
[api]
socket = "{workdir}/api.sock"
portal_socket = "{workdir}/portal.sock"
portal_socket_group = "nogroup"
[portal]
listen = ""
port = 8080
public_url = "http://{PORTAL_V4}:8080/"
operator_name = "Lab ISP"
cabinet_url = "http://{PAY[0]}/cabinet"
sbp_template = "https://qr.nspk.ru/AS1000?type=02&sum={{amount_kopecks}}&cur=RUB&payee={{account}}"
[[portal.payment_links]]
title = "Bank card"
url = "http://{PAY[0]}/pay?account={{account}}&amount={{amount}}"
[portal.contacts]
phone = "+7 800 000-00-00"
email = "support@isp.example"
hours = "24/7"
"""


def _portal_available() -> bool:
    try:
        import debtgate.portal.cli  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def build(workdir: Path, billing: str, with_portal: bool, tag: str = "lab",
          ack_timeout: int = 120, dsn: str = "") -> Topology:
    for stale in sh("ip", "netns", "list").stdout.split():
        if stale.startswith(f"dg{tag}"):
            sh("ip", "netns", "del", stale, check=False)
    topo = Topology(tag=tag)
    try:
        _populate(topo, workdir, billing, with_portal, ack_timeout, dsn)
    except BaseException:
        topo.teardown()  # what was built so far
        raise
    return topo


def _populate(topo: Topology, workdir: Path, billing: str, with_portal: bool,
              ack_timeout: int, dsn: str) -> None:
    topo.build_gateway()
    for host in HOSTS:
        topo.add_host(host["ns"], host["v4"], host["v6"])
    topo.add_host("web", [WEB[0]], [WEB[1]], upstream=True)
    topo.add_host("pay", [PAY[0]], [PAY[1]], upstream=True)
    topo.serve_http("web", "web host: you are on the Internet")
    topo.serve_http("pay", "payment host (walled garden)")
    (workdir / "subscribers.json").write_text(
        json.dumps({"subscribers": [h["row"] for h in HOSTS]}, indent=2, ensure_ascii=False))
    (workdir / "debtgate.toml").write_text(lab_config(workdir, billing, ack_timeout, dsn))
    log_path = workdir / "daemon.log"
    topo.log_offset = log_path.stat().st_size if log_path.exists() else 0  # type: ignore[attr-defined]
    log = open(log_path, "ab")  # noqa: SIM115 - lives as long as the lab
    topo.popen(topo.gw, [sys.executable, "-m", "debtgate.cli", "run", "--config",
                         str(workdir / "debtgate.toml")], stdout=log, stderr=subprocess.STDOUT)
    if with_portal and _portal_available():
        plog = open(workdir / "portal.log", "ab")  # noqa: SIM115
        # The portal runs unprivileged: no capabilities, only the socket's group.
        workdir.chmod(0o755)
        topo.popen(topo.gw, ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             "--inh-caps=-all", "--bounding-set=-all", sys.executable, "-m",
                             "debtgate.cli", "portal", "--config",
                             str(workdir / "debtgate.toml")], stdout=plog,
                   stderr=subprocess.STDOUT)
    else:
        topo.serve_text(topo.gw, "debtgate portal placeholder", (8080,))


def wait_ready(workdir: Path, timeout: float = 30, offset: int = 0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = (workdir / "daemon.log").read_bytes()[offset:].decode(errors="replace")
        if " ready: " in text:
            return True
        time.sleep(0.1)
    return False


def instructions(workdir: Path, billing: str = "file", pg: Any = None,
                 removed: bool = False) -> str:
    ns = "ip netns exec dglab"
    gone = " (removed when the lab stops)" if removed else ""
    if pg is not None:
        psql = f'runuser -u postgres -- psql "{pg.socket_dsn}"'
        edit = f"""Billing is PostgreSQL (reference schema). A payment lifts a block at once:
  {psql} -c "INSERT INTO payments (account_id, amount) VALUES ('A-blocked', 1250)"
  {psql} -c "UPDATE accounts SET state = 'blocked' WHERE id = 'A-active'"   # blocks"""  # noqa: S608
    else:
        edit = 'Then set account 100002 to "active" in the subscriber file and curl again.'
    return f"""
debtgate lab is running. Work directory: {workdir}{gone}
  subscribers : {workdir}/subscribers.json   (edit it: changes apply within a second)
  config      : {workdir}/debtgate.toml
  logs        : {workdir}/daemon.log, {workdir}/portal.log

Try:
  {ns}act curl -s http://{WEB[0]}/            # active: the web host
  {ns}blk curl -si http://{WEB[0]}/           # blocked: redirected to the stub page
  {ns}blk curl -s http://{PAY[0]}/            # blocked: the payment host is in the garden
  {ns}blk curl -s https://{WEB[0]}/           # blocked: HTTPS refused at once (TCP reset)
  {ns}blk curl -sg 'http://[{WEB[1]}]/'   # blocked over IPv6 too
  {ns}wrn curl -si http://{WEB[0]}/           # warned (a /28 and a delegated /56): the notice
  {ns}gw nft list table inet debtgate          # the sets
{edit}
Ctrl-C tears the lab down.
"""


def main(args: argparse.Namespace) -> int:
    if shutil.which("nft") is None or shutil.which("ip") is None:
        print("debtgate lab needs root, nftables and iproute2 (bash examples/install.sh)",
              file=sys.stderr)
        return 1
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="debtgate-lab-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    # mkdtemp makes it 0700, but the portal (nobody) and the PostgreSQL billing (postgres)
    # run as other users and need to reach their files in it.
    workdir.chmod(0o755)  # noqa: S103 - a lab's throwaway directory
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    pg = None
    topo: Topology | None = None
    rc = 1
    try:
        if args.billing == "postgres":
            import asyncio  # noqa: PLC0415

            from debtgate_lab.pglab import start_lab_billing  # noqa: PLC0415

            pg, _dsn = asyncio.run(start_lab_billing(workdir))
        topo = build(workdir, args.billing, not args.no_portal,
                     dsn=pg.socket_dsn if pg else "")
        rc = _serve(workdir, topo, args.billing, pg, lambda: stop, removed=own_workdir)
    finally:
        if topo is not None:
            topo.teardown()
        if pg is not None:
            pg.cleanup()
        if rc == 0 and own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif rc != 0:
            print(f"the lab's files are kept in {workdir}", file=sys.stderr)
        print("lab torn down", flush=True)
    return rc


def _serve(workdir: Path, topo: Topology, billing: str, pg: Any,
           stopped: Callable[[], bool], removed: bool) -> int:
    """Wait for the lab to come up, print what to try, run until Ctrl-C; the exit code."""
    if not wait_ready(workdir, offset=getattr(topo, "log_offset", 0)):
        print((workdir / "daemon.log").read_text(errors="replace"), file=sys.stderr)
        print("the daemon did not become ready", file=sys.stderr)
        return 1
    end = time.monotonic() + 15
    while time.monotonic() < end and sh(
            "curl", "-s", "-o", "/dev/null", "--max-time", "1",
            f"http://{PORTAL_V4}:8080/api/state", ns=topo.gw, check=False).returncode != 0:
        time.sleep(0.1)
    if stopped():
        return 0
    print(instructions(workdir, billing, pg, removed), flush=True)
    while not stopped():
        time.sleep(0.2)
        # Ctrl-C in a terminal signals the whole job: the lab's own processes end on it
        # too, which is no failure (the handler has run by the time sleep returns).
        if not stopped() and any(p.poll() is not None for p in topo.procs):
            print("a lab process exited; see the logs", file=sys.stderr)
            return 1
    return 0
