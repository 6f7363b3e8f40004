"""Every shipped profile against a real FreeRADIUS acting as the NAS's CoA server."""

from __future__ import annotations

import time

import pytest
from conftest import PROFILES, make_config, running, wait_result
from freeradius import BINARY, FreeRadius

from debtgate.model import Session, State
from debtgate.radius.dispatcher import CoaDispatcher, Intent

pytestmark = [
    pytest.mark.radius,
    pytest.mark.skipif(BINARY is None, reason="freeradius binary not installed"),
]


# what FreeRADIUS must have received for a restrict, besides identification
EXPECTED_RESTRICT = {
    "mikrotik": ("CoA-Request", [("Mikrotik-Address-List", "debtgate-blocked")]),
    "cisco-isg": ("CoA-Request", [("Cisco-AVPair", "subscriber:command=activate-service"),
                                  ("Cisco-AVPair", "subscriber:service-name=DEBTGATE-REDIRECT")]),
    "juniper-mx": ("CoA-Request", [("ERX-Service-Deactivate", "svc-inet"),
                                   ("ERX-Service-Activate:1", "svc-redirect")]),
    "accel-ppp-ipoe": ("CoA-Request", [("L4-Redirect", "1"),
                                       ("L4-Redirect-Ipset", "l4-redirect")]),
    "accel-ppp-pppoe": ("Disconnect-Request", []),
    "huawei": ("CoA-Request", [("Huawei-Qos-Profile-Name", "debtgate-redirect")]),
    "generic-disconnect": ("Disconnect-Request", []),
}
EXPECTED_RESTORE = {
    "mikrotik": ("Disconnect-Request", []),
    "cisco-isg": ("CoA-Request", [("Cisco-AVPair", "subscriber:command=deactivate-service"),
                                  ("Cisco-AVPair", "subscriber:service-name=DEBTGATE-REDIRECT")]),
    "juniper-mx": ("CoA-Request", [("ERX-Service-Deactivate", "svc-redirect"),
                                   ("ERX-Service-Activate:1", "svc-inet")]),
    "accel-ppp-ipoe": ("CoA-Request", [("L4-Redirect", "0")]),
    "accel-ppp-pppoe": ("Disconnect-Request", []),
    "huawei": ("CoA-Request", [("Huawei-Qos-Profile-Name", "default")]),
    "generic-disconnect": ("Disconnect-Request", []),
}
IDENT = {"Message-Authenticator", "Event-Timestamp", "NAS-IP-Address", "Acct-Session-Id"}


def packets_for(server: FreeRadius, session_id: str, count: int = 1) -> list[dict[str, object]]:
    # received() returns at once when earlier tests' packets exist: wait here, since the
    # reader thread may not have consumed FreeRADIUS's output for this request yet
    for _ in range(40):
        got = [p for p in server.received(wait=0.1)
               if ("Acct-Session-Id", session_id) in p["attrs"]]  # type: ignore[operator]
        if len(got) >= count:
            return got
        time.sleep(0.1)
    return got


@pytest.mark.parametrize("intent_name", ["restrict", "restore"])
@pytest.mark.parametrize("profile", PROFILES)
async def test_profile_attributes_reach_freeradius(server: FreeRadius, tmp_path, profile: str,
                                                   intent_name: str) -> None:
    config = make_config(tmp_path, server.port, profile)
    dispatcher = CoaDispatcher(config)
    session_id = f"{'sess' if intent_name == 'restrict' else 'restore'}-{profile}"
    state = State.BLOCKED if intent_name == "restrict" else State.ACTIVE
    async with running(dispatcher):
        dispatcher.submit(Intent("acc-1", state, Session(session_id=session_id), ("10.0.0.5",)))
        result = await wait_result(dispatcher, "acc-1")
    assert result["result"] == "acked", result
    expected_type, expected_attrs = (EXPECTED_RESTRICT if intent_name == "restrict"
                                     else EXPECTED_RESTORE)[profile]
    assert result["request"] == expected_type
    packets = packets_for(server, session_id)
    assert len(packets) == 1
    packet = packets[0]
    assert packet["type"] == expected_type
    attrs = packet["attrs"]
    names = {name for name, _ in attrs}  # type: ignore[union-attr]
    assert IDENT <= names
    assert ("NAS-IP-Address", "127.0.0.1") in attrs  # type: ignore[operator]
    vendor = [(n, v) for n, v in attrs if n not in IDENT]  # type: ignore[union-attr]
    assert vendor == expected_attrs


async def test_unknown_session_is_gone_and_not_retried(server: FreeRadius, tmp_path) -> None:
    dispatcher = CoaDispatcher(make_config(tmp_path, server.port, "cisco-isg"))
    async with running(dispatcher):
        dispatcher.submit(Intent("acc-2", State.BLOCKED, Session(session_id="no-such-session")))
        result = await wait_result(dispatcher, "acc-2")
    assert result["result"] == "session_gone"
    assert result["reply"] == "CoA-NAK" and result["error_cause"] == 503
    assert len(packets_for(server, "no-such-session", count=2)) == 1
    status = dispatcher.status()["nas"]["bras1"]
    assert status["nak"] == {"503-Session-Context-Not-Found": 1}
    assert status["session_gone"] == 1 and status["retransmits"] == 0


async def test_wrong_secret_gets_no_answer(server: FreeRadius, tmp_path) -> None:
    config = make_config(tmp_path, server.port, "generic-disconnect", timeout=0.2, retries=1)
    (tmp_path / "nas.secret").write_text("not-the-secret\n")
    dispatcher = CoaDispatcher(config)
    async with running(dispatcher):
        dispatcher.submit(Intent("acc-3", State.BLOCKED, Session(session_id="sess-mikrotik")))
        result = await wait_result(dispatcher, "acc-3", timeout=3)
    assert result["result"] == "timeout"
    assert dispatcher.status()["nas"]["bras1"]["retransmits"] == 1
