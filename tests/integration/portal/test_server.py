"""Listeners: HTTP + HTTPS (RFC 8908) in one process, and several workers on one port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from debtgate.model import State
from debtgate.portal.server import start

from .conftest import MemoryLink, make_config, subscriber


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=portal.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_dual_port() -> int:
    """A TCP port free on both 127.0.0.1 and ::1."""
    for _ in range(20):
        port = free_port()
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on both loopbacks")


@pytest.mark.skipif(not has_ipv6_loopback(), reason="needs IPv6 on the loopback")
@pytest.mark.parametrize("fast_path", [True, False])
async def test_default_listen_answers_on_ipv4_and_ipv6(fast_path):
    """The default ``listen`` is every address of both families: the portal_v6 DNAT
    target (here ::1) answers as the IPv4 one does."""
    port = free_dual_port()
    config = make_config(port=port, trusted_proxies=[], fast_path=fast_path,
                         public_url=f"http://[::1]:{port}/")
    assert "listen" not in config.model_fields_set
    link = MemoryLink({"::1": subscriber("::1", State.BLOCKED),
                       "127.0.0.1": subscriber("127.0.0.1", State.BLOCKED)})
    runner = await start(config, link, secret=b"k" * 32)
    try:
        async with aiohttp.ClientSession() as session:
            for url in (f"http://[::1]:{port}/", f"http://127.0.0.1:{port}/"):
                async with session.get(url, headers={"Host": f"[::1]:{port}"}) as resp:
                    assert resp.status == 200, url
                    assert "3456" in await resp.text()
    finally:
        await runner.cleanup()
    assert link.asked >= 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
async def test_http_and_https_listeners(tmp_path):
    cert, key = self_signed(tmp_path)
    port, tls_port = free_port(), free_port()
    config = make_config(listen="127.0.0.1", port=port, https_port=tls_port,
                         tls_cert_file=cert, tls_key_file=key, trusted_proxies=[],
                         https_url=f"https://portal.test:{tls_port}/")
    link = MemoryLink({"127.0.0.1": subscriber("127.0.0.1", State.BLOCKED)})
    runner = await start(config, link, secret=b"k" * 32)
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    try:
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{tls_port}/api/captive"
            async with session.get(url, ssl=ctx, headers={"Host": "portal.test"}) as resp:
                assert resp.status == 200
                data = json.loads(await resp.text())
            assert data["captive"] is True
            assert data["user-portal-url"] == f"https://portal.test:{tls_port}/"
            async with session.get(f"http://127.0.0.1:{port}/",
                                   headers={"Host": "example.org"},
                                   allow_redirects=False) as resp:
                assert resp.status == 302
    finally:
        await runner.cleanup()


def test_run_portal_with_two_workers(tmp_path):
    port = free_port()
    code = (
        "import sys, logging; logging.basicConfig(level=logging.INFO)\n"
        "from debtgate.config.portal import PortalConfig\n"
        "from debtgate.portal.server import run_portal\n"
        f"cfg = PortalConfig(listen='127.0.0.1', port={port}, "
        f"daemon_socket={str(tmp_path / 'none.sock')!r})\n"
        "sys.exit(run_portal(cfg, 2))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /x HTTP/1.1\r\nHost: example.org\r\n\r\n")
                    head = s.recv(4096).decode()
                break
            except OSError:
                assert time.monotonic() < deadline, "portal did not start"
                time.sleep(0.1)
        assert head.startswith("HTTP/1.1 302")
        assert "Location: http://10.255.255.1:8080/?url=http%3A%2F%2Fexample.org%2Fx" in head
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 2
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err[-2000:]
    assert err.count(f"portal listening on 127.0.0.1:{port}") == 2
