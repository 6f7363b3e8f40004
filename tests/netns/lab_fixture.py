"""The lab (daemon + real unprivileged portal) as a test fixture."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate_lab.lab import build, wait_ready
from debtgate_lab.netlab import Topology, can_run, sh

from .conftest import curl, wait_http


class Lab:
    def __init__(self, topo: Topology, workdir: Path) -> None:
        self.topo = topo
        self.workdir = workdir

    def curl(self, host: str, url: str, *extra: str, timeout: float = 5) -> tuple[int, str]:
        """curl from a host; non-breaking spaces in the answer read as plain spaces."""
        rc, body = curl(self.topo, host, url, timeout=timeout, extra=extra)
        return rc, body.replace("\u00a0", " ").replace("\u202f", " ")

    def ns(self, host: str) -> str:
        return self.topo.hosts[host].ns


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    why = can_run()
    if why:
        pytest.skip(why)
    workdir = Path(tempfile.mkdtemp(prefix="debtgate-test-"))
    workdir.chmod(0o755)
    topo = build(workdir, "file", True, tag=secrets.token_hex(2), ack_timeout=3)
    try:
        if not wait_ready(workdir):
            raise AssertionError((workdir / "daemon.log").read_text())
        wait_http(topo, "blk", "http://10.255.255.1:8080/api/state", want="state")
        yield Lab(topo, workdir)
    finally:
        topo.teardown()
        for log in ("daemon.log", "portal.log"):
            path = workdir / log
            if path.exists():
                artifacts = Path("artifacts")
                artifacts.mkdir(exist_ok=True)
                shutil.copy(path, artifacts / f"lab-{log}")
        shutil.rmtree(workdir, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[2]
LAB_PREFIX = "dglab"
"""`debtgate lab` names its namespaces dglab<host> (dglabgw, dglabblk, ...)."""


def lab_namespaces() -> list[str]:
    return [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith(LAB_PREFIX)]


def namespace_pids(ns: str) -> set[int]:
    out = sh("ip", "netns", "pids", ns, check=False).stdout
    return {int(p) for p in out.split()}


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name ``text`` (a lab's work directory)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if any(text in a for a in args) and alive(int(cmdline.parent.name)):
            found.append(" ".join(args).strip())
    return found


class ReadmeLab:
    """A README command (``bash examples/lab.sh ...``) run from the repository root as a
    user types it in a terminal: its own session and process group (the terminal's
    foreground job), output read line by line, Ctrl-C sent to the whole group."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.proc = subprocess.Popen(["bash", "-c", command], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    @property
    def output(self) -> str:
        with self._seen:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        with self._seen:
            while not any(text in line for line in self.lines):
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"{self.command!r} never printed {text!r}:\n"
                                         + "\n".join(self.lines))
                self._seen.wait(min(left, 0.5))

    def workdir(self) -> Path:
        for line in self.lines:
            match = re.search(r"Work directory: (\S+)", line)
            if match:
                return Path(match.group(1))
        raise AssertionError("no work directory printed:\n" + self.output)

    def tries(self) -> dict[str, str]:
        """The printed "Try:" lines: comment -> the command exactly as printed (the whole
        line, comment included: it is pasted into a shell)."""
        out: dict[str, str] = {}
        inside = False
        for line in self.lines:
            if line.strip() == "Try:":
                inside = True
            elif inside and line.startswith("  ") and "#" in line:
                out[line.split("#", 1)[1].strip()] = line.strip()
            elif inside:
                break
        return out

    def printed(self, starting: str) -> list[str]:
        """Printed lines that start (after indentation) with ``starting``."""
        return [line.strip() for line in self.lines if line.strip().startswith(starting)]

    def ctrl_c(self, timeout: float = 60) -> int:
        """What a terminal does on Ctrl-C: SIGINT to every process of the foreground job."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(10)

    def kill(self) -> None:
        """After a failed test: whatever is left of the job goes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def run_printed(command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """A printed command line pasted into a shell (``bash -c``), exactly as printed."""
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=ROOT)
