"""``debtgate check-config`` (the real CLI, a subprocess) finds what the daemon would refuse
at start: missing or unreadable secret files of every kind, named by key path and file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET_TEXT = "s3cret-value-0123456789abcdef"


def check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debtgate.cli", "check-config", str(config)],
                          capture_output=True, text=True, check=False, timeout=60)


def write_config(tmp: Path, files: dict[str, Path]) -> Path:
    subs = tmp / "subs.json"
    subs.write_text("[]")
    cfg = tmp / "debtgate.toml"
    cfg.write_text(f"""
[daemon]
state_dir = "{tmp}"
[source]
kind = "postgres"
[source.postgres]
dsn_file = "{files['dsn']}"
[api]
socket = "{tmp}/api.sock"
listen = "127.0.0.1:9180"
token_file = "{files['token']}"
[portal]
csrf_secret_file = "{files['csrf']}"
[radius]
enabled = true
[[radius.nas]]
name = "bras-1"
address = "127.0.0.1"
secret_file = "{files['nas']}"
profile = "mikrotik"
[radius.accounting]
port = 18130
secret_file = "{files['acct']}"
[selfservice.promise]
enabled = true
[selfservice.hook]
kind = "http"
url = "http://127.0.0.1:1/hook"
secret_file = "{files['hook']}"
""")
    return cfg


def good_files(tmp: Path) -> dict[str, Path]:
    files = {name: tmp / f"{name}.secret" for name in
             ("dsn", "token", "csrf", "nas", "acct", "hook")}
    for name, path in files.items():
        path.write_text("postgresql://debtgate@/billing\n" if name == "dsn" else SECRET_TEXT)
        path.chmod(0o600)
    return files


def test_all_files_present_is_ok(tmp_path: Path) -> None:
    res = check(write_config(tmp_path, good_files(tmp_path)))
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout


KEYS = {"nas": "radius.nas[0] (bras-1).secret_file", "acct": "radius.accounting.secret_file",
        "token": "api.token_file", "csrf": "portal.csrf_secret_file",
        "dsn": "source.postgres.dsn_file", "hook": "selfservice.hook.secret_file"}


@pytest.mark.parametrize("missing", sorted(KEYS))
def test_missing_secret_file_is_reported(tmp_path: Path, missing: str) -> None:
    files = good_files(tmp_path)
    files[missing].unlink()
    res = check(write_config(tmp_path, files))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "OK" not in res.stdout
    lines = [line for line in res.stderr.splitlines() if KEYS[missing] in line]
    assert lines, res.stderr
    assert str(files[missing]) in lines[0]
    assert SECRET_TEXT not in res.stderr + res.stdout


def test_every_problem_at_once_and_unreadable_files(tmp_path: Path) -> None:
    files = good_files(tmp_path)
    for name in ("nas", "acct", "token"):
        files[name].unlink()
    files["csrf"].write_text("short")  # fewer than 16 bytes: the portal refuses it
    res = check(write_config(tmp_path, files))
    assert res.returncode == 2
    for name in ("nas", "acct", "token", "csrf"):
        assert KEYS[name] in res.stderr, res.stderr
    assert "fewer than 16 bytes" in res.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    files = good_files(tmp_path)
    files["nas"].chmod(0)
    res = check(write_config(tmp_path, files))
    assert res.returncode == 2 and "Permission denied" in res.stderr
