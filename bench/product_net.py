"""Network side of the product benchmarks: namespaces, a web host, the prober, the kernel.

The namespaces come from :class:`debtgate_lab.netlab.Topology` (gateway ``gw``, the
subscriber namespace ``sub`` holding the planned accounts' addresses, the upstream
web host ``web`` with a TCP listener). Everything is read from outside the daemon:
the prober's connects and ``nft -j list set`` in the gateway namespace.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debtgate_lab.netlab import Topology, sh  # noqa: E402

WEB_V4 = "198.18.0.10"
WEB_PORT = 8000
PROBER = Path(__file__).with_name("product_prober.py")
LISTEN = f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("{WEB_V4}", {WEB_PORT})); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
"""


def build(addresses: list[str]) -> Topology:
    """Gateway, a subscriber namespace with ``addresses``, a web host listening."""
    topo = Topology()
    try:
        topo.build_gateway()
        topo.add_host("sub", v4=addresses, v6=[])
        topo.add_host("web", v4=[WEB_V4], v6=[], upstream=True)
        topo.popen(topo.hosts["web"].ns, [sys.executable, "-c", LISTEN])
    except BaseException:
        topo.teardown()
        raise
    return topo


class Prober:
    """The prober process in the subscriber namespace (see ``product_prober.py``)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._next = 0

    @classmethod
    async def start(cls, topo: Topology) -> Prober:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", topo.hosts["sub"].ns, sys.executable, str(PROBER), WEB_V4,
            str(WEB_PORT), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return cls(proc)

    async def begin(self, addrs: list[str], want: str, timeout: float = 30,
                    pause: float = 0.0005) -> int:
        """Start watching; returns once the prober's loop runs (its id)."""
        assert self.proc.stdin is not None
        self._next += 1
        cmd = {"id": self._next, "want": want, "addrs": addrs, "timeout": timeout,
               "pause": pause}
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        await self._line()
        return self._next

    async def result(self, timeout: float = 60) -> tuple[dict[str, float], list[str]]:
        answer = await self._line(timeout)
        return answer["at"], answer["missing"]

    async def watch(self, addrs: list[str], want: str, timeout: float = 30
                    ) -> tuple[dict[str, float], list[str]]:
        await self.begin(addrs, want, timeout)
        return await self.result(timeout + 10)

    async def _line(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the prober exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def kernel_set(gw: str, name: str = "blocked_v4_host") -> set[str] | None:
    """The elements of one of the daemon's sets, read with ``nft -j``; None: no table."""
    proc = sh("nft", "-j", "list", "set", "inet", "debtgate", name, ns=gw, check=False,
              timeout=120)
    if proc.returncode != 0:
        return None
    elems: set[str] = set()
    for item in json.loads(proc.stdout)["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            if isinstance(elem, dict) and "elem" in elem:
                elem = elem["elem"]["val"]
            elems.add(str(elem))
    return elems


async def wait_kernel_holds(gw: str, wanted: set[str], deadline: float = 60,
                            exact: bool = False) -> float | None:
    """Monotonic time the first listing holding every ``wanted`` element (``exact``: and
    nothing else) returned: an upper bound of the moment the kernel held them."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        elems = await asyncio.to_thread(kernel_set, gw)
        if elems is not None and wanted <= elems and (not exact or len(elems) == len(wanted)):
            return time.monotonic()
        await asyncio.sleep(0.05)
    return None


def nft_floor(gw: str, elements: list[str], runs: int = 3) -> dict[str, Any]:
    """``nft -f`` adding ``elements`` to a scratch set in the gateway: median of ``runs``
    (the kernel's floor for the same element changes), and the runs."""
    body = ", ".join(elements)
    script = ("table inet dgfloor { set s { type ipv4_addr; }; }\n"
              f"add element inet dgfloor s {{ {body} }}\n")
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(script)
    times = []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            sh("nft", "-f", f.name, ns=gw, timeout=120)
            times.append(round(time.perf_counter() - started, 3))
            sh("nft", "delete", "table", "inet", "dgfloor", ns=gw)
    finally:
        Path(f.name).unlink()
    return {"median_s": statistics.median(times), "runs_s": times}


def drop_table(gw: str) -> None:
    """What a reboot leaves: no ``inet debtgate`` table (and no conntrack entries)."""
    sh("nft", "delete", "table", "inet", "debtgate", ns=gw, check=False)
    sh("conntrack", "-F", ns=gw, check=False)
