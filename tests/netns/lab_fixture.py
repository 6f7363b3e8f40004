"""The lab (daemon + real unprivileged portal) as a test fixture."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from debtgate.lab import build, wait_ready
from debtgate.netlab import Topology, can_run

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
