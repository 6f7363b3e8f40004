"""ManagementExtension: serves the daemon's backend, reloads listeners and the token."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from pathlib import Path

import aiohttp
import pytest

from debtgate.api.extension import ManagementExtension, read_token
from debtgate.config import ApiSection, Config
from debtgate.config.reloads import Reloads
from debtgate.errors import ConfigError

from .backend import MemoryBackend


class FakeDaemon:
    def __init__(self) -> None:
        self.management = MemoryBackend()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(workdir: Path, **api: object) -> Config:
    return Config(api=ApiSection(socket=workdir / "api.sock", **api))  # type: ignore[arg-type]


def test_read_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "token"
    f.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 16"):
        read_token(f)
    f.write_text("two tokens 0123456789abcdef\n")
    with pytest.raises(ConfigError):
        read_token(f)
    f.write_text("0123456789abcdef0123\n")
    f.chmod(0o644)
    assert read_token(f) == "0123456789abcdef0123"
    assert "chmod 600" in caplog.text and "0123456789abcdef0123" not in caplog.text
    with pytest.raises(ConfigError, match="cannot read"):
        read_token(tmp_path / "absent")
    with pytest.raises(ConfigError, match="token_file"):
        ManagementExtension(config(tmp_path, listen="127.0.0.1:0"))


async def test_run_and_reload() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dgext", dir="/tmp"))
    token = workdir / "token"
    token.write_text("first-token-0123456789")
    token.chmod(0o600)
    cfg = config(workdir)
    ext, daemon = ManagementExtension(cfg), FakeDaemon()
    reloads = Reloads(cfg)
    ext.watch(reloads)
    task = asyncio.create_task(ext.run(daemon))
    try:
        for _ in range(100):
            if (workdir / "api.sock").exists():
                break
            await asyncio.sleep(0.02)
        conn = aiohttp.UnixConnector(path=str(workdir / "api.sock"))
        async with aiohttp.ClientSession(connector=conn) as s, s.post("http://x/resync") as r:
            assert r.status == 202 and daemon.management.resyncs == 1
        port = free_port()
        new = config(workdir, listen=f"127.0.0.1:{port}", token_file=token)
        assert await reloads.reload(new) == ["the management API (listeners restarted)"]
        await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as s:
            url = f"http://127.0.0.1:{port}/healthz"
            async with s.get(url) as r:
                assert r.status == 401
            auth = {"Authorization": "Bearer first-token-0123456789"}
            async with s.get(url, headers=auth) as r:
                assert r.status == 200
            assert await reloads.reload(new) == []  # nothing changed: nothing restarted
            token.write_text("second-token-0123456789")
            # The same config, the token file rotated: the listeners take the new token.
            assert await reloads.reload(new) == ["the management API (listeners restarted)"]
            await asyncio.sleep(0.2)
            async with s.get(url, headers=auth) as r:
                assert r.status == 401
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        shutil.rmtree(workdir, ignore_errors=True)
