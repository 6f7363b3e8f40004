"""The shipped daemon as the product benchmarks run it: ``debtgate run --config FILE``.

One process in the gateway namespace (``ip netns exec`` execs it: the process id is
the daemon's), started with ``NOTIFY_SOCKET`` pointing at a datagram socket of ours
(sd_notify's READY=1 is timed on arrival). The config is the default plus what the
benchmark needs: the billing DSN, ``[network] serves``, the local sockets, the state
directory; conntrack, audit (the billing's ``debtgate.audit`` table), persisted state,
history, the management API and the portal channel are on as shipped. Everything the
benchmarks read comes from outside: the management API on its Unix socket
(``/status``, ``/readyz``, ``POST /resync``), the notify socket, ``/proc/PID/status``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

DEBTGATE = Path(sys.executable).with_name("debtgate")
CONFIG = """\
[daemon]
state_dir = "{work}/state"
[source]
kind = "postgres"
[source.postgres]
dsn = "{dsn}"
{source_extra}
[network]
serves = ["10.0.0.0/8", "100.64.0.0/16"]
[api]
socket = "{work}/api.sock"
portal_socket = "{work}/portal.sock"
[guard]
enabled = {guard}
"""


class Daemon:
    def __init__(self, gw: str, work: Path, dsn: str) -> None:
        self.gw, self.work, self.dsn = gw, work, dsn
        self.config = work / "debtgate.toml"
        self.log = work / "daemon.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.notes: list[tuple[float, str]] = []
        self._notify: socket.socket | None = None
        self._session: aiohttp.ClientSession | None = None
        self.guard, self.source_extra = True, ""
        self.write_config()

    def write_config(self, guard: bool | None = None, source_extra: str | None = None) -> None:
        """The config file; what is not given stays as it was (first: the defaults)."""
        self.guard = self.guard if guard is None else guard
        self.source_extra = self.source_extra if source_extra is None else source_extra
        self.config.write_text(CONFIG.format(work=self.work, dsn=self.dsn,
                                             guard=str(self.guard).lower(),
                                             source_extra=self.source_extra))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> float:
        """Spawn the daemon; returns the monotonic time it was spawned."""
        path = self.work / "notify.sock"
        path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(path))
        self._notify.setblocking(False)
        self.notes = []
        asyncio.get_running_loop().add_reader(self._notify.fileno(), self._on_note)
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        log = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        self.started = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.gw, str(DEBTGATE), "run", "--config", str(self.config),
            env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self.started

    def _on_note(self) -> None:
        assert self._notify is not None
        while True:
            try:
                data = self._notify.recv(4096)
            except BlockingIOError:
                return
            self.notes.append((time.monotonic(), data.decode(errors="replace")))

    def note_time(self, word: str) -> float | None:
        return next((t for t, text in self.notes if word in text.split("\n")), None)

    async def api(self, method: str, path: str, timeout: float = 30) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.work / "api.sock")))
        async with self._session.request(method, f"http://daemon{path}",
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return r.status, await r.json()

    async def status(self) -> dict[str, Any]:
        _, body = await self.api("GET", "/status")
        result: dict[str, Any] = body
        return result

    async def wait_ready(self, deadline: float = 600) -> dict[str, float | None]:
        """Seconds from the spawn to READY=1 and to the first ``/readyz`` 200."""
        end = time.monotonic() + deadline
        readyz: float | None = None
        while time.monotonic() < end and (readyz is None or self.note_time("READY=1") is None):
            self._check_alive()
            if readyz is None:
                try:
                    code, _ = await self.api("GET", "/readyz", timeout=5)
                    if code == 200:
                        readyz = time.monotonic()
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
            await asyncio.sleep(0.02)
        note = self.note_time("READY=1")
        return {"ready_sd_notify_s": None if note is None else round(note - self.started, 3),
                "ready_readyz_s": None if readyz is None else round(readyz - self.started, 3)}

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise RuntimeError(f"the daemon exited {self.proc.returncode}:\n"
                               f"{self.log.read_text(errors='replace')[-3000:]}")

    async def wait_log(self, text: str, after: int, deadline: float = 30) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if text in self.log.read_bytes()[after:].decode(errors="replace"):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no {text!r} in the daemon's log")

    async def reload(self, **config: Any) -> None:
        """Rewrite the config and SIGHUP; waits for the daemon's log to say it applied."""
        offset = self.log.stat().st_size
        self.write_config(**config)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        await self.wait_log("reload:", offset)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._notify is not None:
            asyncio.get_running_loop().remove_reader(self._notify.fileno())
            self._notify.close()
            self._notify = None
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class RssSampler:
    """Samples the daemon's VmRSS every ``interval`` seconds; ``peak`` is the largest."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.pid))
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.peak = rss_mb(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.peak = max(self.peak, rss_mb(self.pid))
