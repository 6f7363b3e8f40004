"""One NAS: its coalescing queue, token bucket, in-flight cap and request policy."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from debtgate.radius.causes import Decision, backoff_delay, cause_label, decide
from debtgate.radius.coalesce import CoalescingQueue, QueueFull
from debtgate.radius.config import NasConfig
from debtgate.radius.intent import Intent
from debtgate.radius.pacing import TokenBucket
from debtgate.radius.packets import CODE_NAMES, Facts, encode, request_attributes
from debtgate.radius.profiles import Profile, ProfileError
from debtgate.radius.sessions import SessionTable
from debtgate.radius.stats import NasStats
from debtgate.radius.transport import NasTransport
from pyrad.dictionary import Dictionary

log = logging.getLogger(__name__)

Recorder = Callable[[str, dict[str, Any]], None]


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
        self.transport = NasTransport(nas.name, nas.address, nas.port, self.stats,
                                      nas.source_address)
        self._slots = asyncio.Semaphore(nas.max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, intent: Intent) -> bool:
        """Queue (or coalesce) an intent; False if the queue is full."""
        try:
            self.queue.put(intent.account, intent)
        except QueueFull:
            self.stats.dropped += 1
            log.error("account=%s nas=%s queue full (%d), intent %s dropped",
                      intent.account, self.nas.name, self.queue.limit, intent.kind)
            return False
        return True

    def status(self) -> dict[str, Any]:
        snap = self.stats.snapshot(len(self.queue), self.queue.in_flight, self.nas.rate,
                                   self.bucket.paused_for)
        snap.update(coalesced=self.queue.coalesced, sockets=self.transport.sockets,
                    profile=self.profile.name)
        return snap

    async def run(self) -> None:
        """Take intents forever (cancel to stop)."""
        try:
            while True:
                key, intent = await self.queue.get()
                await self._slots.acquire()
                await self.bucket.take()
                task = asyncio.create_task(self._process(key, intent))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self.transport.close()

    async def _process(self, key: Hashable, intent: Intent) -> None:
        holding = [True]
        try:
            await self._handle(key, intent, holding)
        finally:
            if holding[0]:
                self._slots.release()
            self.queue.done(key)

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

    async def _handle(self, key: Hashable, intent: Intent, holding: list[bool]) -> None:
        action = self.profile.action(intent.kind)
        base: dict[str, Any] = {"account": intent.account, "nas": self.nas.name,
                                "intent": intent.kind, "state": str(intent.target)}
        if action.kind == "none":
            self._record(intent.account, {**base, "result": "skipped", "request": None})
            return
        kind, attempt = action.kind, 0
        while True:
            attempt += 1
            facts = self.facts(intent)
            try:
                attrs = request_attributes(self.nas, self.profile, action, facts,
                                           self.dictionary, kind)
            except ProfileError as exc:
                self.stats.unresolved += 1
                log.warning("account=%s nas=%s nothing sent: %s", intent.account,
                            self.nas.name, exc)
                self._record(intent.account, {**base, "result": "unresolved", "detail": str(exc),
                                              "request": None})
                return
            started = time.monotonic()
            reply = await self.transport.request(
                lambda pid, kind=kind, attrs=attrs: encode(  # type: ignore[misc]
                    self.dictionary, self._secret, kind, attrs, pid),
                self.nas.timeout, self.nas.retries)
            decision = decide(reply)
            request = "CoA-Request" if kind == "coa" else "Disconnect-Request"
            result = {**base, "request": request, "result": str(decision), "attempts": attempt,
                      "session_id": facts.session_id, "user_name": facts.user_name,
                      "framed_ip": facts.framed_ip, "at": time.time(),
                      "reply": CODE_NAMES.get(reply.code) if reply else None,
                      "error_cause": reply.error_cause if reply else None,
                      "detail": reply.detail if reply else "",
                      "ack_trusted": bool(reply and reply.ack and not self.nas.blind_ack)}
            if reply is not None:
                self.stats.latency.add(time.monotonic() - started)
                if not reply.ack:
                    self.stats.nak[cause_label(reply.error_cause)] += 1
            if decision is Decision.ACKED:
                self.stats.ack += 1
                log.info("account=%s nas=%s %s %s acked%s", intent.account, self.nas.name,
                         intent.kind, request, " (unverified: blind-ACK NAS)"
                         if self.nas.blind_ack else "")
            elif decision is Decision.TIMEOUT:
                self.stats.timeouts += 1
                log.warning("account=%s nas=%s %s %s: no reply after %d transmissions",
                            intent.account, self.nas.name, intent.kind, request,
                            self.nas.retries + 1)
            elif decision is Decision.GONE:
                self.stats.session_gone += 1
                if self.table is not None and facts.session_id:
                    self.table.remove(self.nas.name, facts.session_id)
                log.info("account=%s nas=%s session %s gone (503)", intent.account,
                         self.nas.name, facts.session_id)
            elif decision is Decision.RECIPE:
                self.stats.recipe_errors += 1
                log.error("account=%s nas=%s profile %s: %s NAKed with %s %s", intent.account,
                          self.nas.name, self.profile.name, request,
                          cause_label(result["error_cause"]), result["detail"])
                if kind == "coa" and action.fallback_disconnect:
                    self.stats.fallbacks += 1
                    kind = "disconnect"
                    continue
            else:
                log.warning("account=%s nas=%s %s NAK %s (attempt %d)", intent.account,
                            self.nas.name, request, cause_label(result["error_cause"]), attempt)
                if attempt <= self.nas.retries and not self.queue.has_pending(key):
                    await self._wait_retry(decision, attempt, holding)
                    if not self.queue.has_pending(key):
                        continue
                    result["result"] = "superseded"
                else:
                    result["result"] = "failed" if attempt > self.nas.retries else "superseded"
            self._record(intent.account, result)
            return

    async def _wait_retry(self, decision: Decision, attempt: int, holding: list[bool]) -> None:
        delay = backoff_delay(self.nas.backoff, attempt)
        self._slots.release()
        holding[0] = False
        if decision is Decision.BACKOFF:
            self.bucket.pause(delay)
            log.warning("nas=%s resources unavailable (506): paused %.1fs", self.nas.name, delay)
        else:
            await asyncio.sleep(delay)
        await self._slots.acquire()
        holding[0] = True
        await self.bucket.take()
