"""The client commands as subprocesses against the real socket and TCP listener."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import Served

pytestmark = pytest.mark.timeout(60)


def debtgate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "debtgate.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=30)


def over_socket(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return debtgate(*args, "--socket", served.socket)


def test_status(served: Served) -> None:
    out = over_socket(served, "status", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["subscribers"] == {"active": 1200, "warn": 30, "blocked": 12}
    text = over_socket(served, "status").stdout
    assert "postgres: connected" in text and "DIFFERS" in text and "radius:bras-2" in text


def test_explain(served: Served) -> None:
    out = over_socket(served, "explain", "2001:db8::2", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["account"] == "ACC0002"
    text = over_socket(served, "explain", "ACC0002").stdout
    assert "state" in text and "blocked" in text and "history:" in text
    out = over_socket(served, "explain", "10.1.1.1")
    assert out.returncode == 1 and "no subscriber" in out.stderr


def test_override_cycle(served: Served) -> None:
    out = over_socket(served, "override", "add", "ACC0001", "--restrict", "--reason",
                      "chargeback", "--ttl", "2h", "--json")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["action"] == "restrict" and created["expires_at"]
    listed = json.loads(over_socket(served, "override", "list", "--json").stdout)
    assert [o["id"] for o in listed] == [created["id"]]
    text = over_socket(served, "override", "list").stdout
    assert "chargeback" in text and created["id"] in text
    assert over_socket(served, "override", "delete", created["id"]).returncode == 0
    out = over_socket(served, "override", "delete", created["id"])
    assert out.returncode == 1 and "no override" in out.stderr
    assert "no overrides" in over_socket(served, "override", "list").stdout


def test_override_until_and_errors(served: Served) -> None:
    until = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    out = over_socket(served, "override", "add", "ACC0002", "--release", "--reason", "promise",
                      "--until", until.isoformat(), "--json")
    assert out.returncode == 0, out.stderr
    assert datetime.fromisoformat(json.loads(out.stdout)["expires_at"]) == until
    local = until.astimezone().replace(tzinfo=None).isoformat()
    out = over_socket(served, "override", "add", "ACC0002", "--release", "--reason", "promise",
                      "--until", local, "--json")
    assert datetime.fromisoformat(json.loads(out.stdout)["expires_at"]) == until
    out = over_socket(served, "override", "add", "ACC0002", "--release", "--reason", "x",
                      "--ttl", "soon")
    assert out.returncode == 1 and "--ttl" in out.stderr
    out = over_socket(served, "override", "add", "NOPE", "--restrict", "--reason", "x")
    assert out.returncode == 1 and "unknown account" in out.stderr
    out = over_socket(served, "override", "add", "ACC0002", "--reason", "x")
    assert out.returncode == 2


def test_resync_and_approve(served: Served) -> None:
    assert json.loads(over_socket(served, "resync", "--json").stdout) == {"accepted": True}
    out = over_socket(served, "approve")
    assert out.returncode == 1 and "not holding" in out.stderr
    served.backend.guard_holding = 7
    out = over_socket(served, "approve", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["released"] == 7


def test_over_tcp_with_token(served: Served, tmp_path: Path) -> None:
    out = debtgate("status", "--json", "--url", served.url, "--token-file", served.token_file)
    assert out.returncode == 0 and "feed" in json.loads(out.stdout)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-at-all")
    out = debtgate("status", "--url", served.url, "--token-file", wrong)
    assert out.returncode == 1 and "refused the token" in out.stderr


def test_daemon_not_running(tmp_path: Path) -> None:
    out = debtgate("status", "--socket", tmp_path / "absent.sock")
    assert out.returncode == 1 and "is it running" in out.stderr
    out = debtgate("status", "--url", "http://127.0.0.1:9")
    assert out.returncode == 1 and "is it running" in out.stderr
