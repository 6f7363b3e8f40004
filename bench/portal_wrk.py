"""Portal throughput (issues #4, #17): the shipped `debtgate portal` vs nginx, each on ONE
pinned core (core 0), wrk with 256 connections on the other core (core 1).

    sudo .venv/bin/python bench/portal_wrk.py [--seconds 10] [--connections 256] [--runs 3]
        [--workers 1] [--scenarios page_door,page_aiohttp,intercept_door[,intercept_aiohttp]]

Two portals run as `debtgate portal --config FILE --workers N` (the CLI entry point,
uvloop, a config file with the scenario's settings): one with the front door
(``fast_path = true``), one without (``fast_path = false``, pure aiohttp). Both ask a
daemon-side portal API over its Unix socket (a separate process, as in production) for
the view of the asking address (127.0.0.1, a blocked subscriber). Scenarios:

* ``page_*``: ``GET /``, the personalised stub page; floor: nginx serving the same
  bytes as a static file (keep-alive);
* ``intercept_*``: ``GET`` of an article on a foreign Host, the intercept's ``302`` with
  the signed original URL and ``Connection: close`` (a new connection per request);
  floor: nginx's ``return 302`` of the same Location with ``keepalive_timeout 0``.

Each run measures every scenario, portal then its floor, seconds apart; the medians of
the runs are reported with every run. ``wrk_cpu`` is the share of its core wrk itself
used (near 1.0 would mean the client, not the server, is the limit). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
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
from debtgate.api.portal_channel import make_portal_api, serve_unix
from debtgate.view import view_of
SUB = Subscriber("100002", ("127.0.0.1",), State.BLOCKED, Decimal("1250.00"), "RUB",
                 date(2026, 11, 1), None, "Anna Smirnova", "ru")
class Backend:
    errors = 0
    def view(self, ip):
        return view_of(SUB, ip, ack_timeout=3600) if ip == "127.0.0.1" else None
    async def acknowledge(self, ip):
        return None
async def main():
    await serve_unix(make_portal_api(Backend()), sys.argv[1])
    await asyncio.Event().wait()
asyncio.run(main())
'''

PORTAL_CONFIG = """
[api]
portal_socket = "{sock}"
[portal]
listen = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}/"
fast_path = {fast}
rate_limit = 1e9
rate_burst = 1000000000
cabinet_url = "http://198.51.100.5/cabinet"
sbp_template = "https://qr.nspk.ru/AS1000?type=02&sum={{amount_kopecks}}&cur=RUB&payee={{account}}"
[[portal.payment_links]]
title = "Bank card"
url = "http://198.51.100.5/pay?a={{account}}"
"""
"""The scenario's settings for `debtgate portal --config FILE` (the shipped entry point)."""

INTERCEPT_HOST = "news.example.com"
INTERCEPT_PATH = "/2026/12/03/article-about-something.html"

def wrk(url: str, seconds: int, connections: int, host: str | None = None
        ) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra = ["-H", f"Host: {host}"] if host else []
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t", "1", "-c", str(connections),
                          "-d", f"{seconds}s", "--latency", *extra, url], capture_output=True,
                         text=True, check=True).stdout
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


def head_of(port: int, host: str, path: str) -> bytes:
    """The raw response head to one request (to check it and to copy its Location)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\r\n\r\n")[0]


def start_portal(tmp: Path, sock: str, port: int, fast: bool, workers: int
                 ) -> subprocess.Popen[bytes]:
    conf = tmp / f"portal-{port}.toml"
    conf.write_text(PORTAL_CONFIG.format(sock=sock, port=port, fast=str(fast).lower()))
    debtgate = Path(sys.executable).with_name("debtgate")
    return subprocess.Popen(["taskset", "-c", "0", str(debtgate), "portal", "--config", str(conf),
                             "--workers", str(workers)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="portal workers (one core: 1)")
    ap.add_argument("--scenarios", default="page_door,page_aiohttp,intercept_door",
                    help="comma-separated; also intercept_aiohttp")
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
        ports = {True: 18080, False: 18083}
        for fast, port in ports.items():
            procs.append(start_portal(tmp, sock, port, fast, args.workers))
        page = wait_up(f"http://127.0.0.1:{ports[True]}/")
        assert "1\u00a0250,00".encode() in page, page[:500]
        assert wait_up(f"http://127.0.0.1:{ports[False]}/") == page
        redirect = head_of(ports[True], INTERCEPT_HOST, INTERCEPT_PATH)
        assert redirect.startswith(b"HTTP/1.1 302 ") and b"&sig=" in redirect, redirect
        location = re.search(rb"\r\nLocation: (\S+)", redirect)
        assert location is not None
        (tmp / "www").mkdir()
        (tmp / "www" / "index.html").write_bytes(page)
        conf = tmp / "nginx.conf"
        conf.write_text(f"""
worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{ access_log off;
  server {{ listen 127.0.0.1:18081; root {tmp}/www;
    location / {{ add_header Cache-Control no-store; }} }}
  server {{ listen 127.0.0.1:18082; keepalive_timeout 0;
    location / {{ add_header Cache-Control no-store always;
                 return 302 "{location.group(1).decode()}"; }} }}
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp}; }}
""")
        procs.append(subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", str(conf)]))
        wait_up("http://127.0.0.1:18081/")
        assert head_of(18082, INTERCEPT_HOST, INTERCEPT_PATH).startswith(b"HTTP/1.1 302 ")
        # scenario: (portal URL, Host header, nginx floor URL); the intercept's 302 closes
        # the connection (as the application's does), so its floor is nginx's closing 302
        scenarios = {
            "page_door": (f"http://127.0.0.1:{ports[True]}/", None, "http://127.0.0.1:18081/"),
            "page_aiohttp": (f"http://127.0.0.1:{ports[False]}/", None,
                             "http://127.0.0.1:18081/"),
            "intercept_door": (f"http://127.0.0.1:{ports[True]}{INTERCEPT_PATH}",
                               INTERCEPT_HOST, f"http://127.0.0.1:18082{INTERCEPT_PATH}"),
            "intercept_aiohttp": (f"http://127.0.0.1:{ports[False]}{INTERCEPT_PATH}",
                                  INTERCEPT_HOST, f"http://127.0.0.1:18082{INTERCEPT_PATH}"),
        }
        chosen = args.scenarios.split(",")
        load_before = os.getloadavg()
        for name in chosen:  # warm-up
            url, host, _ = scenarios[name]
            wrk(url, 2, args.connections, host)
        results: dict[str, list[dict[str, object]]] = {name: [] for name in chosen}
        for _ in range(args.runs):
            for name in chosen:
                url, host, floor = scenarios[name]
                portal = wrk(url, args.seconds, args.connections, host)
                nginx = wrk(floor, args.seconds, args.connections, INTERCEPT_HOST if host else None)
                results[name].append({"portal": portal, "nginx_floor": nginx,
                                      "ratio": round(portal["rps"] / nginx["rps"], 3)})

        def med(runs: list[dict[str, object]], side: str, key: str) -> float:
            return round(statistics.median(r[side][key] for r in runs), 2)  # type: ignore[index]

        print(json.dumps({
            "page_bytes": len(page), "connections": args.connections, "seconds": args.seconds,
            "workers": args.workers, "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "median": {name: {"portal_rps": med(runs, "portal", "rps"),
                              "portal_p99_ms": med(runs, "portal", "p99_ms"),
                              "nginx_rps": med(runs, "nginx_floor", "rps"),
                              "nginx_p99_ms": med(runs, "nginx_floor", "p99_ms"),
                              "ratio": round(statistics.median(r["ratio"] for r in runs), 3)}
                       for name, runs in results.items()},
            "runs": results,
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
