"""The README's quick-start commands, run exactly as the README writes them.

`bash examples/lab.sh` and `bash examples/lab.sh --billing postgres` are started from the
repository root with no extra flags (so the lab picks its own work directory) and driven
as a user would: wait for the printed "what to try" lines, paste the printed curl and
psql commands into a shell, check what they answer, edit the printed subscriber file,
then Ctrl-C (SIGINT to the whole foreground job) and check nothing is left: no lab
namespaces, no lab processes, no work directory.

The README's other command, `bash tests/run.sh`, is what CI runs (`.ci/run` execs it), so
CI itself covers it. tests/unit/test_readme_commands.py checks that every command in the
README is one of these.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from debtgate_lab.lab import build
from debtgate_lab.netlab import PORTAL_V4, can_run, sh
from debtgate_lab.pglab import pg_bindir

from .lab_fixture import (
    ReadmeLab,
    alive,
    lab_namespaces,
    namespace_pids,
    processes_mentioning,
    run_printed,
)

pytestmark = pytest.mark.netns

LAB_FILE = "bash examples/lab.sh"
LAB_POSTGRES = "bash examples/lab.sh --billing postgres"
CURL_BLOCKED = "ip netns exec dglabblk curl -si http://198.18.0.10/"
RUN_HERE = (LAB_FILE, LAB_POSTGRES, CURL_BLOCKED)
"""The README commands these tests run, character for character."""
RUN_BY_CI = ("bash tests/run.sh",)
"""The README commands CI runs (.ci/run)."""

WEB_ANSWER = "web host: you are on the Internet"


def eventually(check: Callable[[], bool], timeout: float = 5) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.1)
    return check()


def redirect_of(answer: str) -> str | None:
    """The Location of a 302 answer printed by ``curl -si``, else None."""
    if not re.match(r"HTTP/1\.[01] 302 ", answer):
        return None
    match = re.search(r"^location: (\S+)", answer, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def no_lab_running() -> None:
    """Another lab on this machine (another engineer's test) owns the dglab* names."""
    end = time.monotonic() + 180
    while lab_namespaces():
        if time.monotonic() > end:
            pytest.skip(f"another lab is running here: {lab_namespaces()}")
        time.sleep(2)


def check_tries(lab: ReadmeLab, tries: dict[str, str]) -> str:
    """Paste each printed "Try:" line; returns the blocked host's stub page."""
    assert CURL_BLOCKED in [t.split("#", 1)[0].strip() for t in tries.values()], tries
    active = run_printed(tries["active: the web host"])
    assert active.stdout.startswith(WEB_ANSWER), active
    blocked = run_printed(tries["blocked: redirected to the stub page"])
    location = redirect_of(blocked.stdout)
    assert location is not None, blocked
    assert location.startswith(f"http://{PORTAL_V4}:8080/"), location
    page = sh("curl", "-s", "--max-time", "5", location, ns="dglabblk").stdout
    garden = run_printed(tries["blocked: the payment host is in the garden"])
    assert garden.stdout.startswith("payment host (walled garden)"), garden
    start = time.monotonic()
    https = run_printed(tries["blocked: HTTPS refused at once (TCP reset)"])
    assert https.returncode == 7, https  # curl: could not connect (reset), not a timeout
    assert time.monotonic() - start < 3
    v6 = run_printed(tries["blocked over IPv6 too"])
    assert v6.returncode == 0 and "web host" not in v6.stdout, v6
    warned = run_printed(tries["warned (a /28 and a delegated /56): the notice"])
    assert warned.returncode == 0 and warned.stdout.startswith("HTTP/1."), warned
    assert "web host" not in warned.stdout.split("\r\n\r\n", 1)[0], warned
    sets = run_printed(tries["the sets"])
    assert "table inet debtgate" in sets.stdout and "100.64.1.11" in sets.stdout, sets
    return page


def lab_pids(workdir: Path) -> set[int]:
    pids: set[int] = set()
    for ns in lab_namespaces():
        pids |= namespace_pids(ns)
    pidfile = workdir / "billing-pg" / "data" / "postmaster.pid"
    if pidfile.exists():
        pids.add(int(pidfile.read_text().split()[0]))
    return pids


def check_torn_down(lab: ReadmeLab, workdir: Path, pids: set[int]) -> None:
    rc = lab.ctrl_c()
    assert rc == 0, lab.output
    assert lab.lines[-1] == "lab torn down", lab.output
    assert lab_namespaces() == []
    assert [p for p in pids if alive(p)] == []
    assert processes_mentioning(str(workdir)) == []
    with pytest.raises(ProcessLookupError):  # nothing left in the job's process group
        os.killpg(lab.proc.pid, 0)
    assert not workdir.exists(), sorted(p.name for p in workdir.iterdir())


def run_lab(command: str, live_change: Callable[[ReadmeLab, dict[str, str]], None]) -> None:
    why = can_run()
    if why:
        pytest.skip(why)
    no_lab_running()
    lab = ReadmeLab(command)
    workdir: Path | None = None
    try:
        lab.wait_for("Ctrl-C tears the lab down.", timeout=900)  # installs first
        assert ">> debtgate installed: debtgate " in lab.output
        workdir = lab.workdir()
        assert workdir.parent == Path(tempfile.gettempdir()), workdir  # the default one
        assert workdir.name.startswith("debtgate-lab-"), workdir
        tries = lab.tries()
        live_change(lab, tries)
        pids = lab_pids(workdir)
        assert pids
        check_torn_down(lab, workdir, pids)
    finally:
        if lab.proc.poll() is None:
            lab.kill()
        for ns in lab_namespaces():  # none were there when this test began
            sh("ip", "netns", "del", ns, check=False)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def test_readme_lab_file_billing() -> None:
    """`bash examples/lab.sh`: the file source; editing the printed subscriber file lifts
    the block within a second or so."""

    def live_change(lab: ReadmeLab, tries: dict[str, str]) -> None:
        page = check_tries(lab, tries)
        assert "1\u00a0250,00" in page, page
        [line] = lab.printed("subscribers :")
        path = Path(line.split(":", 1)[1].split()[0])
        data = json.loads(path.read_text())
        for row in data["subscribers"]:
            if row["account"] == "100002":
                row["state"] = "active"
        path.write_text(json.dumps(data))
        blocked = tries["blocked: redirected to the stub page"]
        assert eventually(lambda: WEB_ANSWER in run_printed(blocked).stdout), lab.output

    run_lab(LAB_FILE, live_change)


def test_readme_lab_postgres_billing() -> None:
    """`bash examples/lab.sh --billing postgres`: a throwaway PostgreSQL; the printed
    payment INSERT lifts the block live, the printed UPDATE blocks the active host."""
    if pg_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed")

    def live_change(lab: ReadmeLab, tries: dict[str, str]) -> None:
        page = check_tries(lab, tries)
        assert 'action="/promise"' in page, page  # self-service is on with PostgreSQL
        [pay] = [c for c in lab.printed("runuser -u postgres -- psql") if "INSERT" in c]
        [block] = [c for c in lab.printed("runuser -u postgres -- psql") if "UPDATE" in c]
        paid = run_printed(pay)
        assert paid.returncode == 0, paid
        blocked = tries["blocked: redirected to the stub page"]
        assert eventually(lambda: WEB_ANSWER in run_printed(blocked).stdout), lab.output
        done = run_printed(block)
        assert done.returncode == 0, done
        active = tries["active: the web host"]
        assert eventually(lambda: run_printed(active).stdout == ""), lab.output  # a 302

    run_lab(LAB_POSTGRES, live_change)


def test_a_failed_build_leaves_no_namespaces(tmp_path: Path) -> None:
    """The lab's topology is torn down when building it fails halfway (here: the work
    directory is missing when the subscriber file is written, after the namespaces)."""
    why = can_run()
    if why:
        pytest.skip(why)
    tag = f"f{secrets.token_hex(2)}"
    before = children()
    with pytest.raises(FileNotFoundError):
        build(tmp_path / "missing", "file", False, tag=tag)
    left = [n for n in sh("ip", "netns", "list").stdout.split() if n.startswith(f"dg{tag}")]
    assert left == []
    assert children() - before == set()  # the web hosts' servers went too


def children() -> set[int]:
    """Live child processes of this one."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if ppid == os.getpid() and alive(int(stat.parent.name)):
            found.add(int(stat.parent.name))
    return found
