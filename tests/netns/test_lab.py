"""The README's first quick-start command: `debtgate lab` builds, serves, and tears down."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from debtgate.netlab import can_run, sh

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("billing", ["file", "postgres"])
def test_lab_runs_and_tears_down(tmp_path: Path, billing: str) -> None:
    why = can_run()
    if why:
        pytest.skip(why)
    if any(n.startswith("dglab") for n in sh("ip", "netns", "list").stdout.split()):
        pytest.skip("a lab is already running on this machine")
    workdir = Path("/tmp") / f"debtgate-labtest-{tmp_path.name}"
    shutil.rmtree(workdir, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "debtgate.cli", "lab", "--billing", billing,
                             "--workdir", str(workdir)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = ""
    try:
        end = time.monotonic() + 60
        while "Ctrl-C tears the lab down" not in out and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        assert "debtgate lab is running" in out, out
        blocked = sh("curl", "-s", "--max-time", "5", "http://198.18.0.10/", ns="dglabblk",
                     check=False).stdout
        assert "302" not in blocked  # a redirect has an empty body with -s
        page = sh("curl", "-sL", "--max-time", "5", "http://198.18.0.10/", ns="dglabblk",
                  check=False).stdout
        assert "1\u00a0250,00" in page
        if billing == "postgres":  # self-service is on in the PostgreSQL lab
            assert 'action="/promise"' in page
        active = sh("curl", "-s", "--max-time", "5", "http://198.18.0.10/", ns="dglabact",
                    check=False).stdout
        assert active.startswith("web host")
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert "lab torn down" in rest
    assert proc.returncode == 0
    assert not [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith("dglab")]
    shutil.rmtree(workdir, ignore_errors=True)
