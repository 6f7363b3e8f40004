"""Retransmission, reply verification, Error-Cause handling and coalescing against a fake NAS."""

from __future__ import annotations

import asyncio

from conftest import SECRET, make_config, running, wait_result, wait_until
from fakenas import Answer, FakeNas

from debtgate.model import Session, State
from debtgate.radius.dispatcher import CoaDispatcher, Intent
from debtgate.radius.packets import load_dictionary

DICT = load_dictionary()


async def nas_with(policy) -> tuple[FakeNas, int]:  # type: ignore[no-untyped-def]
    nas = FakeNas(SECRET.encode(), DICT, policy)
    return nas, await nas.start()


def intent(account: str, state: State = State.BLOCKED, sid: str | None = None) -> Intent:
    return Intent(account, state, Session(session_id=sid or f"s-{account}"), ("10.0.0.9",))


async def test_dropped_requests_are_retransmitted_identically(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(drop=seen <= 2))
    d = CoaDispatcher(make_config(tmp_path, port, "mikrotik", timeout=0.1, retries=3))
    async with running(d):
        d.submit(intent("a1"))
        result = await wait_result(d, "a1")
    nas.close()
    assert result["result"] == "acked" and result["ack_trusted"] is True
    assert len(nas.raws) == 3 and len(set(nas.raws)) == 1  # same id, authenticator, bytes
    stats = d.status()["nas"]["bras1"]
    assert stats["sent"] == 1 and stats["retransmits"] == 2 and stats["ack"] == 1
    assert nas.invalid == 0  # every request carried a valid Message-Authenticator
    assert "Event-Timestamp" in nas.requests[0]


async def test_reply_with_wrong_authenticator_is_ignored(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(bad_secret=True, then_good=seen >= 2))
    d = CoaDispatcher(make_config(tmp_path, port, "cisco-isg", timeout=0.15, retries=2))
    async with running(d):
        d.submit(intent("a2"))
        result = await wait_result(d, "a2")
    nas.close()
    assert result["result"] == "acked"
    stats = d.status()["nas"]["bras1"]
    assert stats["bad_reply"] == 2 and stats["retransmits"] == 1


async def test_reply_from_wrong_source_is_ignored(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(wrong_source=True))
    d = CoaDispatcher(make_config(tmp_path, port, "huawei", timeout=0.1, retries=1))
    async with running(d):
        d.submit(intent("a3"))
        result = await wait_result(d, "a3")
    nas.close()
    assert result["result"] == "timeout"
    stats = d.status()["nas"]["bras1"]
    assert stats["bad_source"] == 2 and stats["timeouts"] == 1 and stats["ack"] == 0


async def test_506_backs_off_then_succeeds(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(ack=len(nas.requests) > 1,
                                                        cause=None if len(nas.requests) > 1
                                                        else 506))
    d = CoaDispatcher(make_config(tmp_path, port, "huawei", backoff=0.2))
    async with running(d):
        d.submit(intent("a4"))
        result = await wait_result(d, "a4", result="acked")
    nas.close()
    assert result["attempts"] == 2
    assert d.status()["nas"]["bras1"]["nak"] == {"506-Resources-Unavailable": 1}
    assert len(nas.requests) == 2  # a new request (new Event-Timestamp/id), not a retransmission


async def test_recipe_error_alarms_and_falls_back_to_disconnect(tmp_path) -> None:
    def policy(pkt, seen):  # type: ignore[no-untyped-def]
        return Answer(ack=False, cause=401) if pkt.code == 43 else Answer()
    nas, port = await nas_with(policy)
    d = CoaDispatcher(make_config(tmp_path, port, "mikrotik"))
    async with running(d):
        d.submit(intent("a5"))
        result = await wait_result(d, "a5")
    nas.close()
    assert result["result"] == "acked" and result["request"] == "Disconnect-Request"
    assert [p.code for p in nas.requests] == [43, 40]
    disconnect = nas.requests[1]
    assert "Mikrotik-Address-List" not in disconnect  # identification only
    stats = d.status()["nas"]["bras1"]
    assert stats["recipe_errors"] == 1 and stats["fallbacks"] == 1


async def test_recipe_error_without_fallback_is_not_retried(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(ack=False, cause=407))
    d = CoaDispatcher(make_config(tmp_path, port, "cisco-isg"))
    async with running(d):
        d.submit(intent("a6", State.ACTIVE))  # restore: no fallback in the profile
        result = await wait_result(d, "a6")
    nas.close()
    assert result["result"] == "recipe_error" and result["error_cause"] == 407
    assert len(nas.requests) == 1


async def test_other_naks_are_retried_then_fail(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(ack=False, cause=502))
    d = CoaDispatcher(make_config(tmp_path, port, "huawei", retries=2, backoff=0.01))
    async with running(d):
        d.submit(intent("a7"))
        result = await wait_result(d, "a7", result="failed")
    nas.close()
    assert result["attempts"] == 3 and len(nas.requests) == 3


async def test_blind_ack_nas_result_is_not_trusted(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer())
    d = CoaDispatcher(make_config(tmp_path, port, "accel-ppp-ipoe", blind_ack=True))
    async with running(d):
        d.submit(intent("a8"))
        result = await wait_result(d, "a8")
    nas.close()
    assert result["result"] == "acked" and result["ack_trusted"] is False


async def test_one_in_flight_per_session_latest_intent_wins(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(delay=0.3))
    d = CoaDispatcher(make_config(tmp_path, port, "cisco-isg", timeout=2))
    async with running(d):
        d.submit(intent("a9", State.BLOCKED))
        await wait_until(lambda: len(nas.requests) == 1)
        for state in (State.ACTIVE, State.BLOCKED, State.WARN, State.ACTIVE):
            d.submit(intent("a9", state))
        await wait_until(lambda: len(nas.requests) == 2, timeout=3)
        await asyncio.sleep(0.5)
        result = await wait_result(d, "a9", result="acked")
    nas.close()
    assert len(nas.requests) == 2
    avpairs = [p["Cisco-AVPair"][0] for p in nas.requests]
    assert avpairs == ["subscriber:command=activate-service",
                       "subscriber:command=deactivate-service"]
    assert result["intent"] == "restore"
    assert d.status()["nas"]["bras1"]["coalesced"] == 3


async def test_more_than_256_in_flight_uses_more_sockets(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(delay=0.5))
    d = CoaDispatcher(make_config(tmp_path, port, "huawei", timeout=3, max_in_flight=600))
    async with running(d):
        for i in range(600):
            d.submit(intent(f"b{i}"))
        await wait_until(lambda: d.status()["nas"]["bras1"]["ack"] == 600, timeout=10)
        stats = d.status()["nas"]["bras1"]
    nas.close()
    assert nas.max_concurrent > 256 and stats["sockets"] == 3
    assert stats["retransmits"] == 0 and len(set(nas.session_ids())) == 600


async def test_in_flight_cap_is_respected(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer(delay=0.05))
    d = CoaDispatcher(make_config(tmp_path, port, "huawei", max_in_flight=5))
    async with running(d):
        for i in range(40):
            d.submit(intent(f"c{i}"))
        await wait_until(lambda: d.status()["nas"]["bras1"]["ack"] == 40, timeout=10)
    nas.close()
    assert nas.max_concurrent == 5


async def test_no_session_identifier_sends_nothing(tmp_path) -> None:
    nas, port = await nas_with(lambda pkt, seen: Answer())
    d = CoaDispatcher(make_config(tmp_path, port, "juniper-mx"))
    async with running(d):
        d.submit(Intent("a10", State.BLOCKED, Session(), ("10.0.0.1",)))
        result = await wait_result(d, "a10")
    nas.close()
    assert result["result"] == "unresolved" and nas.requests == []
