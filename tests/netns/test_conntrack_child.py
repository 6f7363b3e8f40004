"""The conntrack child, on the real kernel: it cuts the flows of the given addresses
(and only those) in the gateway's namespace, and a child that died is started again."""

from __future__ import annotations

import json
import subprocess
import sys

from debtgate_lab.netlab import Topology, sh

SCRIPT = """
import asyncio, json, os, signal
from debtgate.kernel.conntrack_child import ProcessCutter

async def main():
    cutter = ProcessCutter(timeout=30)
    await cutter.start()
    first = cutter._proc.pid
    deleted = await cutter.cut(["100.64.9.9"])
    os.kill(first, signal.SIGKILL)
    await cutter._proc.wait()
    again = await cutter.cut(["100.64.9.10", "2001:db8:9::9"])
    second = cutter._proc.pid
    await cutter.close()
    print(json.dumps({"deleted": deleted, "again": again, "restarted": first != second}))

asyncio.run(main())
"""


def _insert(t: Topology, src: str, dst: str, sport: int) -> None:
    sh("conntrack", "-I", "-s", src, "-d", dst, "-p", "tcp", "--sport", str(sport),
       "--dport", "80", "--state", "ESTABLISHED", "-t", "120", "-u", "ASSURED", ns=t.gw)


def _listed(t: Topology) -> str:
    out = subprocess.run(["ip", "netns", "exec", t.gw, "conntrack", "-L"],
                         capture_output=True, text=True, check=False)
    return out.stdout


def test_the_child_cuts_only_the_given_addresses_and_comes_back(topo: Topology) -> None:
    _insert(topo, "100.64.9.9", "198.18.0.10", 40001)
    _insert(topo, "100.64.9.9", "198.18.0.10", 40002)
    _insert(topo, "100.64.9.10", "198.18.0.10", 40003)
    _insert(topo, "100.64.9.11", "198.18.0.10", 40004)  # not asked: stays
    run = subprocess.run(["ip", "netns", "exec", topo.gw, sys.executable, "-c", SCRIPT],
                         capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got == {"deleted": 2, "again": 1, "restarted": True}
    listed = _listed(topo)
    assert "src=100.64.9.11 " in listed
    assert "src=100.64.9.9 " not in listed and "src=100.64.9.10 " not in listed
    sh("conntrack", "-D", "-s", "100.64.9.11", ns=topo.gw, check=False)
