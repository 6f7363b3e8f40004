"""Probe storm (issue 4): 10,000 devices' OS detection probes hit the portal while the
daemon keeps applying billing changes. Does the storm slow enforcement down?

    sudo .venv/bin/python bench/portal_probe_storm.py [--storms dnat,direct,burn]
        [--cycles 6] [--window 15] [--addresses 10000] [--interval 0.01] [--daemon-nice 0]

(``PYTHONPATH`` may point at a snapshot of a commit laid out as the package, so that
the run does not import a working tree other people are editing; the JSON says which.)

Two throwaway network namespaces, joined by a veth pair:

* gateway: the real daemon ``Engine`` (core 1, alone) with the real nft adapter and
  the shipped ruleset, holding 10,000 blocked subscribers 10.1.x.y plus 200 accounts it
  keeps toggling, serving the portal API on a Unix socket as ``debtgate run`` does
  (uvloop, like the daemon). A loop applies one ``Delta`` (one account blocked or
  unblocked: validation, plan, one nft transaction) every ``--interval`` seconds and
  times ``engine.handle``. The portal (``debtgate portal``, one worker, default
  settings; core 0) listens on 10.255.255.1:8080.
* subscribers: every 10.1.x.y is a local address here (one ``local`` route), so each
  connection can come from one of 10,000 real subscriber addresses. The storm client
  (core 0, with the portal) sends the probes a phone or laptop sends on joining a
  network (Android generate_204, Apple hotspot-detect, Windows connecttest;
  ``Connection: close``), 256 connections at a time, cycling over the addresses.

Storm kinds (``--storms``, each one window per cycle):

* ``dnat``: to an Internet address, port 80, so the shipped ruleset's
  ``nat_prerouting`` DNATs it to the portal, exactly as on a gateway;
* ``direct``: to the portal's own address and port (no NAT): the portal cannot know
  the address is captive and asks the daemon within ``probe_question_rate``;
* ``burn``: no probes; a busy loop keeps core 0 as busy as a storm does. The control
  for "core 0 is saturated" itself: how the scheduler spreads the machine's other
  work (on a shared VM, other jobs) changes when one core is full, whatever fills it.

The run alternates windows, quiet then storm, ``--cycles`` times, all with the same
daemon: Q S Q S ... (the default ``dnat,direct,burn``: Q D Q X Q B ...). Each window is
measured from ``--settle`` seconds after its start to its end. Per window: the apply
latencies, the daemon's view questions, the daemon's CPU time (all threads, from
/proc/PID/task/*/schedstat) and its run-queue wait, the portal's CPU time, both cores'
user/system/softirq/steal shares (/proc/stat). Per condition: pooled p50/p99 of the
applies, the spread of the per-window figures, the ratio of each window's p99 to its
cycle's baseline, and a permutation test of "storm windows have a higher apply p99 (or
daemon CPU) than the baseline windows"; all of it again for the clean windows only
(other jobs used < 50 ms/s of either core: the VM is shared). Prints JSON on stdout and
a summary on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

PROBES = (
    b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
    b"User-Agent: Dalvik/2.1.0\r\nConnection: close\r\n\r\n",
    b"GET /hotspot-detect.html HTTP/1.1\r\nHost: captive.apple.com\r\n"
    b"User-Agent: CaptiveNetworkSupport\r\nConnection: close\r\n\r\n",
    b"GET /connecttest.txt HTTP/1.1\r\nHost: www.msftconnecttest.com\r\n"
    b"User-Agent: Microsoft NCSI\r\nConnection: close\r\n\r\n",
)
PORTAL_V4, PORTAL_PORT = "10.255.255.1", 8080
INTERNET = "198.18.0.10"  # any address beyond the gateway: DNATed to the portal
TARGETS = {"dnat": (INTERNET, 80), "direct": (PORTAL_V4, PORTAL_PORT)}
GW_LINK, SUB_LINK = ("192.0.2.1", "192.0.2.2")
CLEAN_LIMIT = 50.0
"""ms/s of a core other jobs may use in a window counted as clean."""
CT_TIME_WAIT = 15


def subscriber_address(i: int) -> str:
    return f"10.1.{i // 250}.{i % 250 + 1}"


# -- daemon side (gateway namespace, core 1) -------------------------------------------

async def daemon(sock: str, n: int, out: str, interval: float) -> None:
    from debtgate.api.portal_channel import make_portal_api, serve_unix
    from debtgate.billing.base import Delta, Snapshot
    from debtgate.billing.rows import Policy
    from debtgate.config import DEFAULT_RULESET
    from debtgate.enforce.engine import Engine
    from debtgate.kernel.conntrack import NullCutter
    from debtgate.kernel.nft import NftAdapter, read_template, render_ruleset
    from debtgate.view import SubscriberView

    nft = NftAdapter()
    await nft.load_ruleset(render_ruleset(read_template(DEFAULT_RULESET), portal_v4=PORTAL_V4,
                                          portal_v6=None, portal_port=PORTAL_PORT,
                                          portal_tls_port=8443))
    engine = Engine(nft, NullCutter(), Policy(min_prefix_v4=8))
    await engine.adopt_kernel()
    rows = [{"account": f"s{i}", "addresses": [subscriber_address(i)], "state": "blocked",
             "amount_due": "1250.00", "currency": "RUB", "since": "2026-11-01"}
            for i in range(n)]
    toggled = 200
    rows += [{"account": f"t{i}", "addresses": [f"10.2.{i // 250}.{i % 250 + 1}"],
              "state": "active"} for i in range(toggled)]
    await engine.handle(Snapshot(rows))
    views: list[float] = []

    class Backend:
        errors = 0

        def view(self, ip: str) -> SubscriberView | None:
            views.append(time.monotonic())
            return engine.portal.view(ip)

        async def acknowledge(self, ip: str) -> dict[str, object] | None:
            return await engine.portal.acknowledge(ip)

    runner = await serve_unix(make_portal_api(Backend()), sock + ".tmp")
    os.rename(sock + ".tmp", sock)  # the orchestrator waits for this name
    samples: list[tuple[float, float, float]] = []  # (start, wall, CPU of the process)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    k = 0
    while not stop.is_set():
        i = k % toggled
        state = "blocked" if (k // toggled) % 2 == 0 else "active"
        delta = Delta([{"account": f"t{i}", "addresses": [f"10.2.{i // 250}.{i % 250 + 1}"],
                        "state": state, "amount_due": "10" if state == "blocked" else "0"}])
        started, cpu = time.monotonic(), time.process_time()
        await engine.handle(delta)
        samples.append((started, time.monotonic() - started, time.process_time() - cpu))
        k += 1
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
    Path(out).write_text(json.dumps({"samples": samples, "views": views,
                                     "views_total": engine.portal.views,
                                     "kernel_writes": engine.stats.kernel_writes}))
    await runner.cleanup()


# -- the storm (subscribers' namespace, core 0) ----------------------------------------

async def storm(n: int, concurrency: int, schedule: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the storm windows of ``schedule`` (monotonic times); per-window stats."""
    index = itertools.count()
    results = []

    async def worker(host: str, port: int, end: float, latencies: list[float],
                     codes: dict[str, int], errors: list[int]) -> None:
        while time.monotonic() < end:
            i = next(index)
            source = subscriber_address(i % n)
            probe = PROBES[(i // n + i) % len(PROBES)]
            started = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(host, port,
                                                               local_addr=(source, 0))
                writer.write(probe)
                data = await asyncio.wait_for(reader.read(), 10)
                writer.close()
            except (OSError, TimeoutError):
                errors[0] += 1
                continue
            latencies.append(time.monotonic() - started)
            code = data[9:12].decode("ascii", "replace")
            codes[code] = codes.get(code, 0) + 1

    for window in schedule:
        if window["kind"] == "burn":
            await asyncio.sleep(max(0.0, window["start"] - time.monotonic()))
            spins = 0
            while time.monotonic() < window["end"]:
                for _ in range(10_000):
                    spins += 1
            results.append({"window": window["index"], "kind": "burn", "spins": spins})
            continue
        if window["kind"] not in TARGETS:
            continue
        host, port = TARGETS[window["kind"]]
        await asyncio.sleep(max(0.0, window["start"] - time.monotonic()))
        latencies: list[float] = []
        codes: dict[str, int] = {}
        errors = [0]
        began = time.monotonic()
        await asyncio.gather(*(worker(host, port, window["end"], latencies, codes, errors)
                               for _ in range(concurrency)))
        took = time.monotonic() - began
        latencies.sort()
        results.append({
            "window": window["index"], "kind": window["kind"], "requests": len(latencies),
            "seconds": round(took, 2), "rps": round(len(latencies) / took) if took else 0,
            "codes": codes, "errors": errors[0],
            "p50_ms": round(pct(latencies, 0.50) * 1000, 2) if latencies else None,
            "p99_ms": round(pct(latencies, 0.99) * 1000, 2) if latencies else None,
        })
    return results


PORTAL_SIDE = r'''
import sys
from debtgate.config.portal import PortalConfig
from debtgate.portal.server import run_portal
settings = {
    "listen": "0.0.0.0", "port": 8080, "public_url": "http://10.255.255.1:8080/",
    "daemon_socket": sys.argv[1],
    "sbp_template": "https://qr.nspk.ru/AS1000?type=02&sum={amount_kopecks}&cur=RUB&payee={account}",
}
if sys.argv[2] != "default":
    settings["probe_question_rate"] = float(sys.argv[2])
sys.exit(run_portal(PortalConfig.model_validate(settings), 1))
'''


# -- measuring -------------------------------------------------------------------------

def pct(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def latency(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"applies": 0}
    ordered = sorted(values)
    return {"applies": len(ordered),
            "p50_ms": round(pct(ordered, 0.50) * 1000, 3),
            "p99_ms": round(pct(ordered, 0.99) * 1000, 3),
            "p999_ms": round(pct(ordered, 0.999) * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3)}


def proc_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process: all its threads' run and run-queue wait time
    (schedstat, ns) and utime+stime (/proc/PID/stat, ticks, dead threads included)."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:
            continue
        run += int(fields[0])
        wait += int(fields[1])
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return {"run": run / 1e9, "wait": wait / 1e9,
            "utime_stime": (int(stat[11]) + int(stat[12])) / TICK}


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cores() -> dict[str, list[int]]:
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            out[name] = [int(v) for v in values[:len(CPU_FIELDS)]]
    return out


def snapshot(pids: dict[str, int]) -> dict[str, Any]:
    return {"t": time.monotonic(), "cores": cores(),
            **{name: proc_cpu(pid) for name, pid in pids.items()}}


def window_usage(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    span = b["t"] - a["t"]
    out: dict[str, Any] = {}
    for name in ("daemon", "portal", "client"):
        out[f"{name}_cpu_ms_per_s"] = round((b[name]["run"] - a[name]["run"]) / span * 1000, 2)
        out[f"{name}_wait_ms_per_s"] = round((b[name]["wait"] - a[name]["wait"]) / span * 1000,
                                             2)
    out["daemon_utime_stime_ms_per_s"] = round(
        (b["daemon"]["utime_stime"] - a["daemon"]["utime_stime"]) / span * 1000, 1)
    for core, before in a["cores"].items():
        after = b["cores"][core]
        delta = [y - x for x, y in zip(before, after, strict=True)]
        total = sum(delta) or 1
        out[core] = {f: round(d / total, 3) for f, d in zip(CPU_FIELDS, delta, strict=True)
                     if f in ("user", "system", "softirq", "irq", "steal", "idle")}
    # what else ran on each core: its busy time less the bench's own processes there
    # (the kernel's work for them, softirq included, counts as "else": an upper bound)
    busy = 1 - out["cpu1"]["idle"] - out["cpu1"]["steal"]
    out["cpu1_others_ms_per_s"] = round(max(0.0, busy * 1000 - out["daemon_cpu_ms_per_s"]), 1)
    busy = 1 - out["cpu0"]["idle"] - out["cpu0"]["steal"] - out["cpu0"]["softirq"]
    out["cpu0_others_ms_per_s"] = round(max(0.0, busy * 1000 - out["portal_cpu_ms_per_s"]
                                            - out["client_cpu_ms_per_s"]), 1)
    return out


def permutation_p(storm: list[float], quiet: list[float], rounds: int = 20000) -> float | None:
    """One-sided p-value of "storm windows are higher": the share of relabellings of
    the pooled windows whose storm-minus-quiet difference of means is at least the
    observed one (exact when the relabellings are few)."""
    if len(storm) < 2 or len(quiet) < 2:
        return None
    pooled = storm + quiet
    k = len(storm)
    observed = statistics.fmean(storm) - statistics.fmean(quiet)
    total = sum(pooled)

    def diff(chosen_sum: float) -> float:
        return chosen_sum / k - (total - chosen_sum) / (len(pooled) - k)

    if math.comb(len(pooled), k) <= 200_000:
        combos = [diff(sum(c)) for c in itertools.combinations(pooled, k)]
    else:
        rng = random.Random(4)
        combos = [diff(sum(rng.sample(pooled, k))) for _ in range(rounds)]
    return round(sum(1 for d in combos if d >= observed - 1e-12) / len(combos), 4)


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def clean(window: dict[str, Any], limit: float) -> bool:
    """True when the machine's other work (other jobs on a shared VM) used less than
    ``limit`` ms/s of either core during the window."""
    return window["cpu0_others_ms_per_s"] < limit and window["cpu1_others_ms_per_s"] < limit


def summarise(windows: list[dict[str, Any]], storms: list[str],
              clean_limit: float | None = None) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for w in windows:
        by_kind.setdefault(w["kind"], []).append(w)
    out: dict[str, Any] = {}
    if clean_limit is None:
        out["clean_windows"] = summarise([w for w in windows if clean(w, CLEAN_LIMIT)], storms,
                                         CLEAN_LIMIT)
        out["clean_windows"]["limit_ms_per_s"] = CLEAN_LIMIT
    for kind, group in by_kind.items():
        pooled = [d for w in group for d in w["_durations"]]
        out[kind] = {
            "windows": len(group),
            "apply_pooled": latency(pooled),
            "apply_cpu_pooled": latency([c for w in group for c in w["_cpu"]]),
            "apply_off_cpu_pooled": latency([c for w in group for c in w["_off_cpu"]]),
            "apply_p50_ms_per_window": spread([w["apply"]["p50_ms"] for w in group]),
            "apply_p99_ms_per_window": spread([w["apply"]["p99_ms"] for w in group]),
            "daemon_views_per_s": spread([w["daemon_views_per_s"] for w in group]),
            "daemon_cpu_ms_per_s": spread([w["daemon_cpu_ms_per_s"] for w in group]),
            "daemon_wait_ms_per_s": spread([w["daemon_wait_ms_per_s"] for w in group]),
            "cpu1_others_ms_per_s": spread([w["cpu1_others_ms_per_s"] for w in group]),
            "cpu0_others_ms_per_s": spread([w["cpu0_others_ms_per_s"] for w in group]),
            "portal_cpu_ms_per_s": spread([w["portal_cpu_ms_per_s"] for w in group]),
            "cpu1_softirq": spread([w["cpu1"]["softirq"] for w in group]),
            "cpu1_steal": spread([w["cpu1"]["steal"] for w in group]),
            "cpu0_idle": spread([w["cpu0"]["idle"] for w in group]),
        }
    for kind in storms:
        answered = [w["storm"] for w in by_kind.get(kind, [])
                    if "storm" in w and "requests" in w["storm"]]
        if answered:
            codes: dict[str, int] = {}
            for a in answered:
                for code, count in a["codes"].items():
                    codes[code] = codes.get(code, 0) + count
            out[kind]["probes"] = {
                "answered": sum(a["requests"] for a in answered), "codes": codes,
                "errors": sum(a["errors"] for a in answered),
                "per_s": spread([a["rps"] for a in answered]),
                "p50_ms": spread([a["p50_ms"] for a in answered if a["p50_ms"] is not None]),
                "p99_ms": spread([a["p99_ms"] for a in answered if a["p99_ms"] is not None])}
    quiet = by_kind.get("quiet", [])
    for kind in storms:
        if len(by_kind.get(kind, [])) >= 2 and len(quiet) >= 2:
            out[f"{kind}_vs_quiet"] = compare(by_kind[kind], quiet)
    burn = by_kind.get("burn", [])
    for kind in storms:
        if kind != "burn" and len(by_kind.get(kind, [])) >= 2 and len(burn) >= 2:
            out[f"{kind}_vs_burn"] = compare(by_kind[kind], burn)
    return out


def compare(group: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, Any]:
    """Storm windows against baseline windows: pooled ratios, the per-cycle ratios
    (each window against the baseline window of its cycle) and permutation tests."""
    pooled = [d for w in group for d in w["_durations"]]
    pooled_base = [d for w in base for d in w["_durations"]]
    sp, bp = latency(pooled), latency(pooled_base)
    base_of = {w["cycle"]: w for w in base}
    paired = [w["apply"]["p99_ms"] / base_of[w["cycle"]]["apply"]["p99_ms"]
              for w in group if w["cycle"] in base_of]

    def values(windows: list[dict[str, Any]], key: str, sub: str | None = None) -> list[float]:
        return [w[key][sub] if sub else w[key] for w in windows]

    return {
        "pooled_p99_ratio": round(sp["p99_ms"] / bp["p99_ms"], 3),
        "pooled_p50_ratio": round(sp["p50_ms"] / bp["p50_ms"], 3),
        "paired_p99_ratios": [round(r, 2) for r in paired],
        "p99_above_baseline_of_same_cycle": f"{sum(r > 1 for r in paired)} of {len(paired)}",
        "p_raises_p99": permutation_p(values(group, "apply", "p99_ms"),
                                      values(base, "apply", "p99_ms")),
        "p_raises_p50": permutation_p(values(group, "apply", "p50_ms"),
                                      values(base, "apply", "p50_ms")),
        "daemon_cpu_ms_per_s_difference": round(
            statistics.median(values(group, "daemon_cpu_ms_per_s"))
            - statistics.median(values(base, "daemon_cpu_ms_per_s")), 2),
        "p_raises_daemon_cpu": permutation_p(values(group, "daemon_cpu_ms_per_s"),
                                             values(base, "daemon_cpu_ms_per_s")),
    }


# -- orchestration ---------------------------------------------------------------------

def sh(*cmd: str, ns: str | None = None) -> None:
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    subprocess.run(full, check=True)


def build_namespaces(gw: str, sub: str, veth: str) -> None:
    for ns in (gw, sub):
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "link", "add", f"{veth}g", "netns", gw, "type", "veth", "peer", "name", f"{veth}s",
       "netns", sub)
    sh("ip", "addr", "add", f"{GW_LINK}/24", "dev", f"{veth}g", ns=gw)
    sh("ip", "link", "set", f"{veth}g", "up", ns=gw)
    sh("ip", "addr", "add", f"{PORTAL_V4}/32", "dev", "lo", ns=gw)
    sh("ip", "route", "add", "10.1.0.0/16", "via", SUB_LINK, ns=gw)
    # A storm of a few thousand new connections a second for minutes would fill the
    # conntrack table (nf_conntrack_max is global) with 120 s TIME_WAIT entries.
    sh("sysctl", "-qw", f"net.netfilter.nf_conntrack_tcp_timeout_time_wait={CT_TIME_WAIT}",
       ns=gw)
    sh("ip", "addr", "add", f"{SUB_LINK}/24", "dev", f"{veth}s", ns=sub)
    sh("ip", "link", "set", f"{veth}s", "up", ns=sub)
    sh("ip", "route", "add", "local", "10.1.0.0/16", "dev", "lo", ns=sub)
    sh("ip", "route", "add", "default", "via", GW_LINK, ns=sub)


def schedule_of(args: argparse.Namespace, t0: float) -> list[dict[str, Any]]:
    kinds = []
    for cycle in range(args.cycles):
        for storm_kind in args.storms:
            kinds += [(cycle, "quiet"), (cycle, storm_kind)]
    windows = []
    t = t0
    for i, (cycle, kind) in enumerate(kinds):
        windows.append({"index": i, "cycle": cycle, "kind": kind, "start": t,
                        "end": t + args.window})
        t += args.window
    return windows


def tree_state() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "src"], capture_output=True, text=True,
                               check=True).stdout.split("\n")
        changed = sorted(line[3:] for line in dirty if line.strip())
        return head + (f" + uncommitted {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def debtgate_from() -> str:
    """Where the package the processes import lives (PYTHONPATH can point the bench at a
    snapshot of a commit, away from a working tree others are editing)."""
    import importlib.util

    spec = importlib.util.find_spec("debtgate")
    return str(Path(spec.origin).parent) if spec and spec.origin else "unknown"


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {0})  # the orchestrator stays off the daemon's core
    tag = f"dgst{os.getpid() % 100000}"
    gw, sub = f"{tag}gw", f"{tag}sub"
    tmp = Path(tempfile.mkdtemp(prefix="debtgate-storm-"))
    sock, out = str(tmp / "portal.sock"), str(tmp / "daemon.json")
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    try:
        build_namespaces(gw, sub, tag)
        nice = ["nice", "-n", str(args.daemon_nice)] if args.daemon_nice else []
        procs.append(subprocess.Popen(["ip", "netns", "exec", gw, *nice, "taskset", "-c", "1",
                                       py, __file__, "--daemon", sock, out, str(args.addresses),
                                       str(args.interval)]))
        deadline = time.monotonic() + 120
        while not os.path.exists(sock):
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError("daemon did not come up")
            time.sleep(0.1)
        procs.append(subprocess.Popen(["ip", "netns", "exec", gw, "taskset", "-c", "0", py,
                                       "-c", PORTAL_SIDE, sock, args.question_rate]))
        time.sleep(2.0)
        pids = {"daemon": procs[0].pid, "portal": procs[1].pid}
        t0 = time.monotonic() + 4.0  # the storm client's start-up is before the first window
        schedule = schedule_of(args, t0)
        storm_proc = subprocess.Popen(
            ["ip", "netns", "exec", sub, "taskset", "-c", "0", py, __file__, "--storm",
             str(args.addresses), str(args.concurrency), json.dumps(schedule)],
            stdout=subprocess.PIPE)
        time.sleep(2.0)
        for name, pid in (*pids.items(), ("client", storm_proc.pid)):
            # ip netns exec, nice and taskset exec the next program: the same pid
            assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(py.encode()), name
        procs.append(storm_proc)  # type: ignore[arg-type]
        pids["client"] = storm_proc.pid
        marks = []
        for w in schedule:
            time.sleep(max(0.0, w["start"] + args.settle - time.monotonic()))
            first = snapshot(pids)
            time.sleep(max(0.0, w["end"] - time.monotonic()))
            last = snapshot(pids)
            marks.append((first, last))
        storm_out, _ = storm_proc.communicate(timeout=120)
        storms = {s["window"]: s for s in json.loads(storm_out)}
        procs[0].send_signal(signal.SIGTERM)
        procs[0].wait(60)
        data = json.loads(Path(out).read_text())
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for ns in (gw, sub):
            subprocess.run(["ip", "netns", "delete", ns], check=False, stderr=subprocess.DEVNULL)
    windows = []
    views = sorted(data["views"])
    for w, (first, last) in zip(schedule, marks, strict=True):
        a, b = first["t"], last["t"]
        durations = [d for t, d, _ in data["samples"] if a <= t < b]
        cpu = [c for t, _, c in data["samples"] if a <= t < b]
        off_cpu = [d - c for t, d, c in data["samples"] if a <= t < b]
        n_views = sum(1 for t in views if a <= t < b)
        entry = {"index": w["index"], "cycle": w["cycle"], "kind": w["kind"],
                 "seconds": round(b - a, 2),
                 "apply": latency(durations), "apply_cpu": latency(cpu),
                 "apply_off_cpu": latency(off_cpu), "daemon_views": n_views,
                 "daemon_views_per_s": round(n_views / (b - a), 1),
                 **window_usage(first, last), "_durations": durations, "_cpu": cpu,
                 "_off_cpu": off_cpu}
        if w["index"] in storms:
            entry["storm"] = storms[w["index"]]
        windows.append(entry)
    summary = summarise(windows, args.storms)
    for entry in windows:
        for key in ("_durations", "_cpu", "_off_cpu"):
            del entry[key]
    return {
        "settings": {"addresses": args.addresses, "cycles": args.cycles, "window_s": args.window,
                     "settle_s": args.settle, "apply_interval_s": args.interval,
                     "storms": args.storms, "concurrency": args.concurrency,
                     "probe_question_rate": args.question_rate,
                     "daemon_nice": args.daemon_nice, "tree": tree_state(),
                     "debtgate_from": debtgate_from(),
                     "conntrack_time_wait_s": CT_TIME_WAIT,
                     "load_before": Path("/proc/loadavg").read_text().split()[:3]},
        "summary": summary,
        "windows": windows,
        "daemon_views_total": data["views_total"],
        "target": "apply p99 in storm windows not above quiet windows' (same run, same daemon)",
    }


def brief(result: dict[str, Any]) -> str:
    """A few lines for people (the JSON has everything)."""
    lines = [f"settings: {json.dumps(result['settings'])}"]
    storms = result["settings"]["storms"]

    def section(summary: dict[str, Any], title: str) -> None:
        lines.append(title)
        for kind in ("quiet", *storms):
            c = summary.get(kind)
            if not c:
                continue
            a = c["apply_pooled"]
            lines.append(
                f"  {kind:7} windows {c['windows']:2} applies {a['applies']:6}  p50 "
                f"{a['p50_ms']:.3f}  p99 {a['p99_ms']:.3f} ms  (per window p99 "
                f"{c['apply_p99_ms_per_window']})  views/s {c['daemon_views_per_s']['median']}"
                f"  daemon cpu ms/s {c['daemon_cpu_ms_per_s']['median']}  wait ms/s "
                f"{c['daemon_wait_ms_per_s']['median']}  others ms/s core0 "
                f"{c['cpu0_others_ms_per_s']['median']} core1 "
                f"{c['cpu1_others_ms_per_s']['median']}")
            lines.append(f"          apply CPU {c['apply_cpu_pooled']}")
            lines.append(f"          apply off CPU {c['apply_off_cpu_pooled']}")
            if "probes" in c:
                lines.append(f"          probes {json.dumps(c['probes'])}")
        for kind in storms:
            for base in ("quiet", "burn"):
                if f"{kind}_vs_{base}" in summary:
                    lines.append(f"  {kind} vs {base}: "
                                 f"{json.dumps(summary[f'{kind}_vs_{base}'])}")

    section(result["summary"], "all windows")
    section(result["summary"]["clean_windows"],
            f"clean windows (other jobs < {CLEAN_LIMIT:.0f} ms/s on each core)")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--daemon":
        import uvloop  # the daemon's loop, as `debtgate run` has it

        sock, out, n, interval = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(daemon(sock, n, out, interval))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--storm":
        import uvloop

        n, concurrency, schedule = int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            print(json.dumps(runner.run(storm(n, concurrency, schedule))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--addresses", type=int, default=10_000)
    ap.add_argument("--cycles", type=int, default=6, help="quiet+storm pairs per storm kind")
    ap.add_argument("--window", type=float, default=15.0, help="seconds per window")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds at the start of each window not measured")
    ap.add_argument("--storms", type=lambda s: s.split(","), default=["dnat", "direct", "burn"],
                    help="storm kinds, comma-separated: dnat, direct, burn")
    ap.add_argument("--interval", type=float, default=0.01, help="seconds between applies")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--question-rate", default="default",
                    help="the portal's probe_question_rate (default: the shipped default)")
    ap.add_argument("--daemon-nice", type=int, default=0)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    for kind in args.storms:
        if kind not in TARGETS and kind != "burn":
            ap.error(f"unknown storm kind {kind!r}")
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    print(brief(result), file=sys.stderr)


if __name__ == "__main__":
    main()
