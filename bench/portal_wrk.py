"""Portal throughput (issue 4): the personalised stub page vs nginx serving a static page
of the same size, each on ONE pinned core, wrk with 256 connections on the other core.

    sudo .venv/bin/python bench/portal_wrk.py [--seconds 10] [--connections 256] [--runs 3]

Each run measures the portal then nginx, seconds apart; the medians of the runs are
reported with every run. ``wrk_cpu`` is the share of its core wrk itself used (near
1.0 would mean the client, not the server, is the limit).

The portal runs as `debtgate portal` would (one worker, uvloop), asking a daemon-side
portal API over its Unix socket (a separate process, as in production) for the view of
the asking address (127.0.0.1, a blocked subscriber). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DAEMON_SIDE = r'''
import asyncio, sys
from datetime import date
from decimal import Decimal
from debtgate.model import State, Subscriber
from debtgate.portal_api import make_portal_api, serve_unix, view_dict
SUB = Subscriber("100002", ("127.0.0.1",), State.BLOCKED, Decimal("1250.00"), "RUB",
                 date(2026, 11, 1), None, "Anna Smirnova", "ru")
class Backend:
    def view(self, ip):
        return view_dict(SUB, ip, ack_timeout=3600) if ip == "127.0.0.1" else None
    async def acknowledge(self, ip):
        return None
async def main():
    await serve_unix(make_portal_api(Backend()), sys.argv[1])
    await asyncio.Event().wait()
asyncio.run(main())
'''

PORTAL_SIDE = r'''
import sys, tomllib
from debtgate.portal.config import PortalConfig
from debtgate.portal.server import run_portal
cfg = PortalConfig.model_validate({
    "listen": "127.0.0.1", "port": int(sys.argv[2]), "public_url": f"http://127.0.0.1:{sys.argv[2]}/",
    "daemon_socket": sys.argv[1], "rate_limit": 1e9, "rate_burst": 1000000000,
    "cabinet_url": "http://198.51.100.5/cabinet",
    "sbp_template": "https://qr.nspk.ru/AS1000?type=02&sum={amount_kopecks}&cur=RUB&payee={account}",
    "payment_links": [{"title": "Bank card", "url": "http://198.51.100.5/pay?a={account}"}],
})
sys.exit(run_portal(cfg, 1))
'''


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t", "1", "-c", str(connections),
                          "-d", f"{seconds}s", "--latency", url], capture_output=True, text=True,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "non_2xx": int(errors.group(1)) if errors else 0,
            "wrk_cpu": round(cpu / seconds, 2)}


def wait_up(url: str) -> bytes:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                return resp.read()
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (bash examples/install.sh --test)")
    tmp = Path(tempfile.mkdtemp(prefix="debtgate-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sock = str(tmp / "portal.sock")
        procs.append(subprocess.Popen([sys.executable, "-c", DAEMON_SIDE, sock]))
        for _ in range(50):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        port = 18080
        procs.append(subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c", PORTAL_SIDE,
                                       sock, str(port)], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        page = wait_up(f"http://127.0.0.1:{port}/")
        assert "1\u00a0250,00".encode() in page, page[:500]
        (tmp / "www").mkdir()
        (tmp / "www" / "index.html").write_bytes(page)
        conf = tmp / "nginx.conf"
        conf.write_text(f"""
worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:18081; root {tmp}/www;
  location / {{ add_header Cache-Control no-store; }} }}
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp}; }}
""")
        procs.append(subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", str(conf)]))
        wait_up("http://127.0.0.1:18081/")
        wrk(f"http://127.0.0.1:{port}/", 2, args.connections)  # warm-up
        runs = []
        for _ in range(args.runs):
            portal = wrk(f"http://127.0.0.1:{port}/", args.seconds, args.connections)
            nginx = wrk("http://127.0.0.1:18081/", args.seconds, args.connections)
            runs.append({"portal": portal, "nginx_floor": nginx,
                         "ratio": round(portal["rps"] / nginx["rps"], 3)})

        def med(side: str, key: str) -> float:
            return round(statistics.median(r[side][key] for r in runs), 2)  # type: ignore[index]

        print(json.dumps({
            "page_bytes": len(page), "connections": args.connections, "seconds": args.seconds,
            "median": {"portal_rps": med("portal", "rps"), "portal_p99_ms": med("portal", "p99_ms"),
                       "nginx_rps": med("nginx_floor", "rps"),
                       "nginx_p99_ms": med("nginx_floor", "p99_ms"),
                       "ratio": round(statistics.median(r["ratio"] for r in runs), 3)},
            "runs": runs,
            "targets": {"ratio": ">= 0.4", "portal_p99_ms": "<= 20"}}, indent=2))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
