"""One NAS: its coalescing queue, token bucket, in-flight cap and request policy.

No task per request: :meth:`NasWorker._pump` starts requests while a slot
(``max_in_flight``) and a token are available, and the transport calls
:meth:`NasWorker._completed` with each verified reply (or timeout), which
decides, records, and pumps again. Waits (token bucket, NAK backoff) are
timers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from pyrad.dictionary import Dictionary

from debtgate.config.radius import NasConfig
from debtgate.radius.causes import Decision, backoff_delay, cause_label, decide
from debtgate.radius.coalesce import CoalescingQueue, QueueFull
from debtgate.radius.hotpath import CompiledAction
from debtgate.radius.intent import Intent
from debtgate.radius.pacing import TokenBucket
from debtgate.radius.packets import CODE_NAMES, Facts, Reply
from debtgate.radius.profiles import Action, Profile, ProfileError
from debtgate.radius.sessions import SessionTable
from debtgate.radius.stats import NasStats
from debtgate.radius.transport import NasTransport

log = logging.getLogger(__name__)

Recorder = Callable[[str, dict[str, Any]], None]

PUMP_BATCH = 64
"""Requests started back to back at most; then the loop runs once (replies are read,
an in-process or same-host NAS drains its socket) before the next batch. A burst of
hundreds of datagrams at once overflows a receiver's default socket buffer."""


class _Job:
    """One intent being worked on (from leaving the queue to its result)."""

    __slots__ = ("key", "intent", "intent_kind", "action", "kind", "attempt", "facts", "result")

    def __init__(self, key: Hashable, intent: Intent, action: Action,
                 intent_kind: str) -> None:
        self.key = key
        self.intent = intent
        self.intent_kind = intent_kind
        self.action = action
        self.kind: str = action.kind
        self.attempt = 0
        self.facts: Facts | None = None
        self.result: dict[str, Any] | None = None


class NasWorker:
    """Sends the intents queued for one NAS, paced and verified."""

    def __init__(
        self, nas: NasConfig, secret: bytes, profile: Profile, dictionary: Dictionary,
        table: SessionTable | None, record: Recorder,
    ) -> None:
        self.nas = nas
        self._secret = secret
        self.profile = profile
        self.dictionary = dictionary
        self.table = table
        self._record = record
        self.queue: CoalescingQueue[Intent] = CoalescingQueue(nas.queue_limit)
        self.bucket = TokenBucket(nas.rate, nas.burst)
        self.stats = NasStats()
        self.transport = NasTransport(nas.name, nas.address, nas.port, self.stats, secret,
                                      nas.timeout, nas.retries, nas.source_address, dictionary)
        self._compiled: dict[tuple[int, str], CompiledAction] = {}
        self._active = 0
        """Requests holding an in-flight slot (sent, or being built)."""
        self._retry: deque[_Job] = deque()
        self._kick = asyncio.Event()
        self._pumping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bucket_timer: asyncio.TimerHandle | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    def submit(self, intent: Intent) -> bool:
        """Queue (or coalesce) an intent; False if the queue is full."""
        try:
            self.queue.put(intent.account, intent)
        except QueueFull:
            self.stats.dropped += 1
            log.error("account=%s nas=%s queue full (%d), intent %s dropped",
                      intent.account, self.nas.name, self.queue.limit, intent.kind)
            return False
        self._kick.set()
        return True

    def status(self) -> dict[str, Any]:
        snap = self.stats.snapshot(len(self.queue), self.queue.in_flight, self.nas.rate,
                                   self.bucket.paused_for, self.nas.degraded_after)
        snap.update(coalesced=self.queue.coalesced, sockets=self.transport.sockets,
                    profile=self.profile.name)
        return snap

    async def run(self) -> None:
        """Send what is queued until cancelled."""
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._kick.clear()
                self._pump()
                if self._kick.is_set():
                    await asyncio.sleep(0)  # let the loop run once between batches
                else:
                    await self._kick.wait()
        finally:
            for timer in (self._bucket_timer, *self._timers):
                if timer is not None:
                    timer.cancel()
            self._timers.clear()
            self._bucket_timer = None
            self.transport.close()

    # -- starting requests -----------------------------------------------------

    def _pump(self) -> None:
        """Start requests while a slot and a token are available."""
        if self._pumping or self._loop is None:
            return
        self._pumping = True
        try:
            cap, queue, bucket = self.nas.max_in_flight, self.queue, self.bucket
            budget = PUMP_BATCH
            while self._active < cap:
                if budget <= 0:
                    self._kick.set()  # more to send: continue after one loop iteration
                    break
                job: _Job | None = None
                if self._retry:
                    job = self._retry[0]
                    if queue.has_pending(job.key):  # a newer intent waits: drop this retry
                        self._retry.popleft()
                        assert job.result is not None
                        job.result["result"] = "superseded"
                        self._finish(job, job.result)
                        continue
                elif not queue.ready:
                    break
                if self._bucket_timer is not None:
                    break
                wait = bucket.try_take()
                if wait > 0:
                    self._bucket_timer = self._loop.call_later(wait, self._bucket_ready)
                    break
                if job is not None:
                    self._retry.popleft()
                else:
                    got = queue.get_nowait()
                    assert got is not None
                    key, intent = got
                    intent_kind = intent.kind
                    action = self.profile.action(intent_kind)
                    job = _Job(key, intent, action, intent_kind)
                    if action.kind == "none":
                        self._finish(job, self._base(job) | {"result": "skipped",
                                                             "request": None})
                        continue
                self._active += 1
                budget -= 1
                self._attempt(job)
        finally:
            self._pumping = False

    def _bucket_ready(self) -> None:
        self._bucket_timer = None
        self._pump()

    def compiled(self, action: Action, kind: str) -> CompiledAction:
        """The pre-encoded form of ``action`` sent as ``kind`` (built once per NAS)."""
        key = (id(action), kind)
        got = self._compiled.get(key)
        if got is None:
            got = self._compiled[key] = CompiledAction(self.nas, self.profile, action, kind,
                                                       self.dictionary, self._secret)
        return got

    def _attempt(self, job: _Job) -> None:
        """Build and send one attempt of ``job`` (which holds a slot)."""
        job.attempt += 1
        intent = job.intent
        facts = job.facts = self.facts(intent)
        compiled = self.compiled(job.action, job.kind)
        try:
            body = compiled.body(facts)
            sock, pkt_id = self.transport.allocate()
            try:
                raw, auth = compiled.finish(body, pkt_id)
            except BaseException:
                self.transport.release(sock, pkt_id)
                raise
        except ProfileError as exc:
            self.stats.unresolved += 1
            log.warning("account=%s nas=%s nothing sent: %s", intent.account,
                        self.nas.name, exc)
            self._active -= 1
            self._finish(job, self._base(job) | {"result": "unresolved", "detail": str(exc),
                                                 "request": None})
            return
        self.transport.send(sock, pkt_id, raw, auth, compiled.reply_codes, self._completed, job)

    def facts(self, intent: Intent) -> Facts:
        """Billing session facts, completed from the accounting table."""
        s = intent.session
        session_id, user_name, framed_ip = s.session_id, s.user_name, s.framed_ip
        if self.table is not None and not (session_id and user_name and framed_ip):
            hit = self.table.find(intent.account, intent.addresses, user_name, session_id,
                                  self.nas.name)
            if hit is not None and hit.nas == self.nas.name:
                session_id = session_id or hit.session_id
                user_name = user_name or hit.user_name
                framed_ip = framed_ip or hit.framed_ip
        return Facts(intent.account, session_id, user_name, framed_ip or intent.host_ipv4)

    def _base(self, job: _Job) -> dict[str, Any]:
        intent = job.intent
        return {"account": intent.account, "nas": self.nas.name, "intent": job.intent_kind,
                "state": intent.target.value}

    def _finish(self, job: _Job, result: dict[str, Any]) -> None:
        """Record the job's result; the account's next intent (if parked) becomes ready."""
        self._record(job.intent.account, result)
        self.queue.done(job.key)
        if self.queue.ready:
            self._kick.set()

    # -- outcomes --------------------------------------------------------------

    def _completed(self, job: _Job, reply: Reply | None, elapsed: float) -> None:
        """The transport's callback: a verified reply, or None after all retransmissions."""
        try:
            self._decide(job, reply, elapsed)
        finally:
            self._pump()

    def _decide(self, job: _Job, reply: Reply | None, elapsed: float) -> None:
        intent, kind, facts, nas = job.intent, job.kind, job.facts, self.nas
        assert facts is not None
        decision = decide(reply)
        request = "CoA-Request" if kind == "coa" else "Disconnect-Request"
        result = {"account": intent.account, "nas": nas.name, "intent": job.intent_kind,
                  "state": intent.target.value, "request": request, "result": decision.value,
                  "attempts": job.attempt, "session_id": facts.session_id,
                  "user_name": facts.user_name, "framed_ip": facts.framed_ip,
                  "at": time.time(), "reply": None, "error_cause": None, "detail": "",
                  "ack_trusted": False}
        stats = self.stats
        if reply is not None:
            result["reply"] = CODE_NAMES.get(reply.code)
            result["error_cause"] = reply.error_cause
            result["detail"] = reply.detail
            result["ack_trusted"] = reply.ack and not nas.blind_ack
            stats.latency.add(elapsed)
            if not reply.ack:
                stats.nak[cause_label(reply.error_cause)] += 1
        if decision is Decision.ACKED:
            self.stats.ack += 1
            log.info("account=%s nas=%s %s %s acked%s", intent.account, nas.name,
                     job.intent_kind, request, " (unverified: blind-ACK NAS)"
                     if nas.blind_ack else "")
        elif decision is Decision.TIMEOUT:
            self.stats.timeouts += 1
            log.warning("account=%s nas=%s %s %s: no reply after %d transmissions",
                        intent.account, nas.name, job.intent_kind, request, nas.retries + 1)
        elif decision is Decision.GONE:
            self.stats.session_gone += 1
            if self.table is not None and facts.session_id:
                self.table.remove(nas.name, facts.session_id)
            log.info("account=%s nas=%s session %s gone (503)", intent.account,
                     nas.name, facts.session_id)
        elif decision is Decision.RECIPE:
            self.stats.recipe_errors += 1
            log.error("account=%s nas=%s profile %s: %s NAKed with %s %s", intent.account,
                      nas.name, self.profile.name, request,
                      cause_label(_cause(result)), result["detail"])
            if kind == "coa" and job.action.fallback_disconnect:
                self.stats.fallbacks += 1
                job.kind = "disconnect"
                self._attempt(job)  # keeps its slot, as before
                return
        else:
            log.warning("account=%s nas=%s %s NAK %s (attempt %d)", intent.account,
                        nas.name, request, cause_label(_cause(result)), job.attempt)
            if job.attempt <= nas.retries and not self.queue.has_pending(job.key):
                job.result = result
                self._wait_retry(job, decision)
                return
            result["result"] = "failed" if job.attempt > nas.retries else "superseded"
        self._active -= 1
        self._finish(job, result)

    def _wait_retry(self, job: _Job, decision: Decision) -> None:
        """Free the slot; after the backoff the job queues for a slot and a token again."""
        delay = backoff_delay(self.nas.backoff, job.attempt)
        self._active -= 1
        if decision is Decision.BACKOFF:
            self.bucket.pause(delay)  # the whole NAS waits; the bucket gates the retry
            log.warning("nas=%s resources unavailable (506): paused %.1fs", self.nas.name, delay)
            self._retry.append(job)
            return
        assert self._loop is not None
        timer: asyncio.TimerHandle | None = None

        def due() -> None:
            self._timers.discard(timer)
            self._retry.append(job)
            self._pump()

        timer = self._loop.call_later(delay, due)
        self._timers.add(timer)


def _cause(result: Mapping[str, object]) -> int | None:
    cause = result.get("error_cause")
    return cause if isinstance(cause, int) else None
