"""radclient feeds the accounting listener; the CoA built afterwards uses the learnt session."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from conftest import SECRET, make_config, running, wait_result, wait_until
from freeradius import BINARY, free_udp_port
from test_freeradius import packets_for

from debtgate.model import Session, State
from debtgate.radius.dispatcher import CoaDispatcher, Intent

pytestmark = [
    pytest.mark.radius,
    pytest.mark.skipif(BINARY is None or shutil.which("radclient") is None,
                       reason="freeradius / radclient (freeradius-utils) not installed"),
]

START = """Acct-Status-Type = {status}
User-Name = "alice"
Acct-Session-Id = "acct-sess-1"
Framed-IP-Address = 10.1.1.7
NAS-IP-Address = 127.0.0.1
Class = "ACC-77"
Message-Authenticator = 0x00
"""


async def radclient(port: int, status: str, secret: str = SECRET) -> int:
    proc = await asyncio.create_subprocess_exec(
        "radclient", "-r", "1", "-t", "1", f"127.0.0.1:{port}", "acct", secret,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    await proc.communicate(START.format(status=status).encode())
    return proc.returncode or 0


async def test_accounting_sessions_feed_coa(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    acct_port = free_udp_port()
    config = make_config(tmp_path, server.port, "mikrotik",
                         accounting={"port": acct_port, "account_attribute": "Class"})
    d = CoaDispatcher(config)
    assert d.sessions is not None
    async with running(d):
        await asyncio.sleep(0.05)
        assert await radclient(acct_port, "Start") == 0  # answered: Accounting-Response
        hit = d.sessions.by_framed_ip("10.1.1.7")
        assert hit is not None and hit.session_id == "acct-sess-1" and hit.nas == "bras1"
        assert d.sessions.by_user_name("alice") == hit == d.sessions.by_account("ACC-77")

        # the billing knows nothing about the session: only the account and its address
        d.submit(Intent("ACC-77", State.BLOCKED, Session(), ("10.1.1.7",)))
        result = await wait_result(d, "ACC-77")
        assert result["result"] == "acked" and result["session_id"] == "acct-sess-1"
        packets = packets_for(server, "acct-sess-1")
        assert packets and ("Mikrotik-Address-List", "debtgate-blocked") in packets[0]["attrs"]

        assert await radclient(acct_port, "Interim-Update") == 0
        assert len(d.sessions) == 1
        assert await radclient(acct_port, "Stop") == 0
        await wait_until(lambda: len(d.sessions) == 0)

        assert await radclient(acct_port, "Start", secret="wrong") != 0  # no answer
        assert len(d.sessions) == 0
        status = d.status()["accounting"]
    assert status["bad_authenticator"] == 1
    assert status["Start"] == 1 and status["Stop"] == 1 and status["Interim-Update"] == 1
