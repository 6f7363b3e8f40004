"""Every command README.md shows is run by a test exactly as written.

The commands are the lines of the README's ```sh blocks and the inline `...` commands in
its Quick start. tests/netns/test_lab.py runs the lab ones character for character
(RUN_HERE); `bash tests/run.sh` is what CI runs (.ci/run execs it, RUN_BY_CI). A command
added to the README fails this test until a test runs it.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from tests.netns.test_lab import RUN_BY_CI, RUN_HERE

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PROGRAMS = {"bash", "sh", "ip", "curl", "psql", "runuser", "python3", "pip", "debtgate",
            "nft", "systemctl", "sudo", "git"}


def is_command(text: str) -> bool:
    """An inline code span that is a command line: a program and at least one argument."""
    words = shlex.split(text)
    return len(words) >= 2 and (words[0] in PROGRAMS or shutil.which(words[0]) is not None)


def readme_commands(text: str) -> list[str]:
    commands: list[str] = []
    for lang, body in FENCE.findall(text):
        if lang in ("sh", "bash", "shell", "console"):
            for line in body.splitlines():
                command = line.split("#", 1)[0].strip()
                if command:
                    commands.append(command)
    quick = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert quick is not None, "README.md has no Quick start section"
    prose = FENCE.sub("", quick.group(1))
    for span in re.findall(r"`([^`\n]+)`", prose):
        if is_command(span) and span not in commands:
            commands.append(span)
    return commands


def test_the_parser_sees_blocks_and_inline_commands() -> None:
    text = ("## Quick start\n\n```sh\nbash a.sh   # one\n\nbash b.sh\n```\n\nThen "
            "`ip netns exec x curl -s http://198.18.0.1/` and `INSERT` or `.venv`.\n\n"
            "```\nnot a shell block\n```\n## Next\n`bash c.sh`\n")
    assert readme_commands(text) == ["bash a.sh", "bash b.sh",
                                     "ip netns exec x curl -s http://198.18.0.1/"]


def test_every_readme_command_is_run_by_a_test() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert "bash examples/lab.sh" in commands and "bash tests/run.sh" in commands, commands
    uncovered = [c for c in commands if c not in RUN_HERE + RUN_BY_CI]
    assert uncovered == [], f"README commands no test runs: {uncovered}"
    stale = [c for c in RUN_HERE + RUN_BY_CI if c not in commands]
    assert stale == [], f"commands the tests claim from the README but it no longer shows: {stale}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for command in RUN_BY_CI:
        assert f"exec {command}" in ci, ci
