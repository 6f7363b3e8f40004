from __future__ import annotations

import asyncio

import pytest
from pyrad import packet as rp

from debtgate.model import Session, State
from debtgate.radius.causes import Decision, backoff_delay, cause_label, decide
from debtgate.radius.coalesce import CoalescingQueue, QueueFull
from debtgate.radius.intent import Intent
from debtgate.radius.pacing import TokenBucket
from debtgate.radius.packets import Reply, decode_reply, encode, load_dictionary
from debtgate.radius.sessions import AcctSession, SessionTable
from debtgate.radius.stats import LatencyHistogram

D = load_dictionary()


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_with_injected_clock() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(3)] == [0, 0, 0]
    assert bucket.try_take() == pytest.approx(0.1)
    clock.t += 0.25
    assert bucket.try_take() == 0 and bucket.try_take() == 0
    assert bucket.try_take() == pytest.approx(0.05)
    clock.t += 100
    assert bucket.tokens == 3  # capped at burst
    bucket.pause(2.0)
    assert bucket.try_take() == pytest.approx(2.0)
    clock.t += 2.0
    assert bucket.try_take() == pytest.approx(0.1)  # restarts empty after a pause


def test_token_bucket_long_run_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=500, burst=1, clock=clock)
    sent = 0
    while clock.t < 110.0:
        wait = bucket.try_take()
        if wait:
            clock.t += wait
        else:
            sent += 1
    assert sent == pytest.approx(5000, abs=2)


@pytest.mark.parametrize(("reply", "decision"), [
    (None, Decision.TIMEOUT),
    (Reply(rp.CoAACK, None, ""), Decision.ACKED),
    (Reply(rp.DisconnectACK, None, ""), Decision.ACKED),
    (Reply(rp.CoANAK, 503, ""), Decision.GONE),
    (Reply(rp.CoANAK, 506, ""), Decision.BACKOFF),
    (Reply(rp.CoANAK, 401, ""), Decision.RECIPE),
    (Reply(rp.CoANAK, 404, ""), Decision.RECIPE),
    (Reply(rp.DisconnectNAK, 407, ""), Decision.RECIPE),
    (Reply(rp.CoANAK, 502, ""), Decision.RETRY),
    (Reply(rp.CoANAK, 505, ""), Decision.RETRY),
    (Reply(rp.CoANAK, None, ""), Decision.RETRY),
])
def test_error_cause_decisions(reply: Reply | None, decision: Decision) -> None:
    assert decide(reply) is decision


def test_cause_labels_and_backoff() -> None:
    assert cause_label(503) == "503-Session-Context-Not-Found"
    assert cause_label(None) == "none" and cause_label(999) == "999-Unknown"
    assert [backoff_delay(1, a) for a in (1, 2, 3)] == [1, 2, 4]
    assert backoff_delay(1, 20) == 60


def test_coalescing_queue_keeps_one_item_per_key() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(limit=3)
    assert q.put("a", "block") is False
    assert q.put("b", "block") is False
    assert q.put("a", "restore") is True  # replaced in place, position kept
    assert len(q) == 2 and q.coalesced == 1
    assert q.get_nowait() == ("a", "restore")
    q.put("a", "block")  # a is in flight: parked
    q.put("a", "warn")
    assert q.has_pending("a") and len(q) == 2
    assert q.get_nowait() == ("b", "block")
    assert q.get_nowait() is None  # a is parked until done
    q.done("a")
    assert q.get_nowait() == ("a", "warn")
    q.put("c", "x"), q.put("d", "x"), q.put("e", "x")
    with pytest.raises(QueueFull):
        q.put("f", "x")
    q.put("d", "y")  # coalescing still works when full


def test_month_start_storm_is_bounded() -> None:
    q: CoalescingQueue[int] = CoalescingQueue(limit=100_000)
    for rounds in range(3):
        for i in range(100_000):
            q.put(i, rounds)
    assert len(q) == 100_000 and q.get_nowait() == (0, 2)


async def test_queue_get_waits() -> None:
    q: CoalescingQueue[str] = CoalescingQueue(limit=2)
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put("k", "v")
    assert await asyncio.wait_for(getter, 1) == ("k", "v")


def test_intent_kind_from_state() -> None:
    kinds = {s: Intent("a", s).kind for s in State}
    assert kinds == {State.ACTIVE: "restore", State.WARN: "warn", State.BLOCKED: "restrict",
                     State.PAUSED: "restrict", State.DISABLED: "restrict"}
    assert Intent("a", State.ACTIVE, Session(), ("10.0.0.0/24", "2001:db8::1", "10.0.0.7"),
                  ).host_ipv4 == "10.0.0.7"


def test_session_table_bounded_with_indexes() -> None:
    t = SessionTable(limit=2)
    t.upsert(AcctSession("n", "s1", "alice", "10.0.0.1", "A1"))
    t.upsert(AcctSession("n", "s2", "bob", "10.0.0.2", "A2"))
    assert t.by_user_name("alice").session_id == "s1"  # type: ignore[union-attr]
    t.upsert(AcctSession("n", "s3", "carol", "10.0.0.1", "A3"))  # evicts s1, takes its IP
    assert len(t) == 2 and t.evicted == 1 and t.by_user_name("alice") is None
    assert t.by_framed_ip("10.0.0.1").session_id == "s3"  # type: ignore[union-attr]
    assert t.find("A2").session_id == "s2"  # type: ignore[union-attr]
    assert t.find("zz", ("10.0.0.2",)).session_id == "s2"  # type: ignore[union-attr]
    t.remove("n", "s3")
    assert t.by_framed_ip("10.0.0.1") is None and t.remove_nas("n") == 1 and len(t) == 0


def test_packet_has_message_authenticator_event_timestamp_and_verifies() -> None:
    req, raw = encode(D, b"k", "coa", [("Acct-Session-Id", "s1"), ("Filter-Id", "x")], 9,
                      now=1_700_000_000)
    decoded = rp.CoAPacket(packet=raw, secret=b"k", dict=D)
    assert decoded.VerifyCoARequest() and decoded.verify_message_authenticator()
    assert raw[20] == 80  # Message-Authenticator first
    assert decoded["Event-Timestamp"] == [1_700_000_000]
    good = req.CreateReply()
    good.message_authenticator = True
    assert decode_reply(req, good.ReplyPacket()) == Reply(rp.CoAACK, None, "")
    wrong_id = req.CreateReply()
    wrong_id.id = 10
    assert decode_reply(req, wrong_id.ReplyPacket()) is None
    forged = req.CreateReply()
    forged.secret = b"other"
    assert decode_reply(req, forged.ReplyPacket()) is None
    disconnect_ack = req.CreateReply()
    disconnect_ack.code = rp.DisconnectACK  # wrong reply type for a CoA-Request
    assert decode_reply(req, disconnect_ack.ReplyPacket()) is None


def test_latency_histogram_quantiles() -> None:
    h = LatencyHistogram()
    for i in range(1, 1001):
        h.add(i / 1000)
    assert h.mean == pytest.approx(0.5005)
    assert h.quantile(0.99) == pytest.approx(0.99, rel=0.13)
