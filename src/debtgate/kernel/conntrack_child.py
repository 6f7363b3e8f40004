"""Conntrack cuts in a child process, so that netlink parsing never holds the daemon's GIL.

:class:`ProcessCutter` starts ``python -m debtgate.kernel.conntrack_child`` on its
first cut and keeps it: one JSON line per cut on the child's stdin (the addresses),
one line back (the count deleted). The child exits when its stdin closes (the daemon
stopped or died), and a child that died is started again on the next cut. It runs
with the daemon's own credentials (CAP_NET_ADMIN) and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence

from debtgate.kernel.conntrack import PyrouteCutter

log = logging.getLogger(__name__)


class ProcessCutter:
    """A :class:`~debtgate.kernel.conntrack.ConntrackCutter` that cuts in the child."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Start the child ahead of the first cut (its imports take a moment)."""
        async with self._lock:
            await self._child()

    async def _child(self) -> asyncio.subprocess.Process:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            proc = self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "debtgate.kernel.conntrack_child",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=1 << 20)
            log.info("conntrack child started: pid %s", proc.pid)
        return proc

    async def cut(self, elements: Sequence[str]) -> int:
        if not elements:
            return 0
        async with self._lock:
            proc = await self._child()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(json.dumps(list(elements)).encode() + b"\n")
                await proc.stdin.drain()
                line = await asyncio.wait_for(proc.stdout.readline(), self.timeout)
            except (OSError, TimeoutError):
                await self.close()
                raise
            if not line:
                await self.close()
                raise OSError("the conntrack child exited")
            reply = json.loads(line)
            if "error" in reply:
                raise OSError(f"conntrack child: {reply['error']}")
            return int(reply["deleted"])

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()


def main() -> None:
    """The child: one cut per line of stdin until it closes."""
    import pyroute2  # noqa: F401, PLC0415 - loaded before the first cut asks for it

    cutter = PyrouteCutter()
    for line in sys.stdin:
        try:
            elements = [str(e) for e in json.loads(line)]
            reply: dict[str, object] = {"deleted": cutter.cut_now(elements)}
        except Exception as exc:  # noqa: BLE001 - told to the daemon, which logs it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
