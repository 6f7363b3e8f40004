"""Fixtures: the management API over a real Unix socket and a real TCP listener.

The server runs in its own thread and event loop, so blocking clients
(schemathesis, subprocesses) can talk to it from the test.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from debtgate.api.mgmt import make_mgmt_app, serve_mgmt

from .backend import MemoryBackend

TOKEN = "s3cret-token-0123456789abcdef"


@dataclass
class Served:
    backend: MemoryBackend
    socket: Path
    url: str
    token: str
    token_file: Path


class ServerThread:
    def __init__(self, backend: MemoryBackend, socket: Path) -> None:
        self.backend = backend
        self.socket = socket
        self.loop = asyncio.new_event_loop()
        self.runners: list[web.AppRunner] = []
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            app = make_mgmt_app(self.backend, TOKEN)
            self.runners = self.loop.run_until_complete(
                serve_mgmt(app, self.socket, "127.0.0.1:0"))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        for runner in self.runners:
            self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def start(self) -> tuple[str, int]:
        self.thread.start()
        self.ready.wait(10)
        if self.error is not None:
            raise self.error
        host, port = [a for a in self.runners[0].addresses if isinstance(a, tuple)][0][:2]
        return host, port

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def served() -> Iterator[Served]:
    workdir = Path(tempfile.mkdtemp(prefix="dgapi", dir="/tmp"))
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    backend = MemoryBackend()
    server = ServerThread(backend, workdir / "api.sock")
    host, port = server.start()
    try:
        yield Served(backend, server.socket, f"http://{host}:{port}", TOKEN, token_file)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
