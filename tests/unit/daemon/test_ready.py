"""sd_notify READY=1: sent once the first sync is applied, or once the kernel enforces a
state while the feed listens, or after the grace only when the kernel already enforces a
state; never "started" with nothing enforced."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from debtgate.config import parse_config
from debtgate.daemon.app import Daemon


def _listen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> socket.socket:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    return sock


def _notes(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def _daemon(tmp_path: Path) -> Daemon:
    return Daemon(parse_config({"daemon": {"state_dir": str(tmp_path / "state")}}))


async def test_nothing_enforced_and_not_synced_is_not_ready(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = _listen(tmp_path, monkeypatch)
    daemon = _daemon(tmp_path)
    task = asyncio.create_task(daemon._ready(grace=0.1))
    await asyncio.sleep(0.4)
    assert not task.done() and _notes(sock) == []
    daemon.engine.stats.synced = True  # the first snapshot is applied
    await asyncio.wait_for(task, 2)
    [note] = _notes(sock)
    assert note.startswith("READY=1\nSTATUS=enforcing 0 subscribers")


async def test_a_kernel_state_makes_it_ready_after_the_grace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = _listen(tmp_path, monkeypatch)
    daemon = _daemon(tmp_path)
    daemon.engine.committed["blocked_v4_host"] = {"100.64.1.11"}  # adopted or restored
    daemon.degraded["source"] = "postgres: connection refused"
    await asyncio.wait_for(daemon._ready(grace=0.1), 2)
    [note] = _notes(sock)
    assert note == ("READY=1\nSTATUS=enforcing the last applied state; "
                    "postgres: connection refused")


async def test_a_kernel_state_and_a_listening_feed_are_ready_before_the_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock = _listen(tmp_path, monkeypatch)
    daemon = _daemon(tmp_path)
    daemon.engine.committed["blocked_v4_host"] = {"100.64.1.11"}  # adopted at a restart
    task = asyncio.create_task(daemon._ready(grace=30))
    await asyncio.sleep(0.3)
    assert not task.done() and _notes(sock) == []  # the feed is not listening yet
    assert daemon.management.ready() == (False, "not synced with billing yet")
    daemon.source.health.listening = True  # payments reach the engine as they happen
    for _ in range(40):
        await asyncio.sleep(0.05)
        if notes := _notes(sock):
            break
    assert notes == ["READY=1\nSTATUS=enforcing the kernel's state; following billing; "
                     "the first snapshot is being applied"]
    assert daemon.management.ready()[0] is True and not task.done()
    daemon.engine.stats.synced = True  # the first snapshot applied: the status says so
    await asyncio.wait_for(task, 2)
    assert _notes(sock) == ["STATUS=enforcing 0 subscribers"]
    daemon.engine.stats.synced = False
    daemon.engine.committed["blocked_v4_host"] = set()  # nothing enforced: not ready
    assert daemon.management.ready() == (False, "not synced with billing yet")
