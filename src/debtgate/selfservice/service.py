"""Self-service from the stub page: promised payment and resuming a voluntary pause.

:class:`SelfService` is a daemon extension. While it runs it is attached to the engine's
portal side as ``engine.portal.selfservice``: its views then add ``"promise"`` and
``"can_resume"`` to the portal's view, and the portal channel routes
``POST /v1/promise`` and ``POST /v1/resume`` to :meth:`promise` and :meth:`resume`.

A request is checked locally (state, debt, tariff, rate limits per address and per
account), then decided by the billing's hook. The result reaches the kernel through
the normal feed (the billing's NOTIFY), never from here. Every request id is
remembered for a while: a repeat (a double click) gets the first answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from debtgate.config import Config
from debtgate.config.reloads import Reloads
from debtgate.config.selfservice import SelfServiceSection
from debtgate.enforce.audit import audit
from debtgate.host import Extension, ExtensionHost
from debtgate.model import State, Subscriber
from debtgate.selfservice.hooks import Hook, HookFailed, make_hook
from debtgate.selfservice.policy import (
    RecentRequests,
    WindowLimiter,
    promise_offer,
    promise_refusal,
)
from debtgate.view import PromiseOffer

log = logging.getLogger(__name__)


class Accounts(Protocol):
    """What self-service reads from the engine."""

    @property
    def inventory(self) -> Any: ...

    def state_of(self, sub: Subscriber) -> State: ...


class SelfService(Extension):
    """The daemon side of promised payment and resume (see the module docstring)."""

    def __init__(self, config: Config, hook: Hook | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.engine: Accounts | None = None
        self.hook: Hook | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.configure(config, hook)

    def configure(self, config: Config, hook: Hook | None = None) -> None:
        self.cfg: SelfServiceSection = config.selfservice
        self.currency = config.network.default_currency
        lim = self.cfg.limits
        self.by_address = WindowLimiter(lim.per_address, lim.window, clock=self.clock)
        self.by_account = WindowLimiter(lim.per_account, lim.window, clock=self.clock)
        self.recent = RecentRequests(lim.remember, lim.max_remembered, clock=self.clock)
        if hook is None and self.cfg.enabled:
            hook = make_hook(self.cfg.hook, config.source.postgres)
        self.hook = hook

    # -- the extension ---------------------------------------------------------
    async def run(self, daemon: ExtensionHost) -> None:
        self.attach(daemon.engine, daemon.engine.portal)
        try:
            await asyncio.Event().wait()
        finally:
            daemon.engine.portal.selfservice = None
            if self.hook is not None:
                await self.hook.close()

    def attach(self, engine: Accounts, portal: Any) -> None:
        """Read accounts from ``engine``; serve the views and requests of ``portal`` (the
        engine's portal side: its ``selfservice`` is this while it runs)."""
        self.engine = engine
        portal.selfservice = self
        if self.cfg.enabled:
            log.info("self-service enabled: promise=%s resume=%s hook=%s",
                     self.cfg.promise.enabled, self.cfg.resume.enabled, self.cfg.hook.kind)

    def watch(self, reloads: Reloads) -> None:
        reloads.on("self-service (its hook replaced)",
                   ["selfservice", "source.postgres", "network.default_currency"],
                   self._reload)

    async def _reload(self, _old: Config, new: Config) -> None:
        previous = self.hook
        self.configure(new)
        if previous is not None:
            await previous.close()

    # -- the view ---------------------------------------------------------------
    def offers(self, sub: Subscriber, state: State) -> tuple[PromiseOffer, bool]:
        """What the view offers ``sub`` in enforced ``state``: the promised payment, and
        whether a pause may be resumed from the page."""
        return (promise_offer(self.cfg.promise, sub, state, self.currency),
                self.cfg.resume.enabled and state is State.PAUSED)

    # -- requests -------------------------------------------------------------------
    async def promise(self, ip: str, request_id: str) -> dict[str, Any] | None:
        """Ask the billing for a promised payment for the owner of ``ip``; None if nobody's."""
        return await self._request("promise", ip, request_id)

    async def resume(self, ip: str, request_id: str) -> dict[str, Any] | None:
        """Ask the billing to resume the paused service of ``ip``'s owner; None if nobody's."""
        return await self._request("resume", ip, request_id)

    def _owner(self, ip: str) -> Subscriber | None:
        if self.engine is None:
            return None
        sub: Subscriber | None = self.engine.inventory.find(ip)
        if sub is None or self.engine.inventory.owner(ip) != sub.account:
            return None
        return sub

    def _local_refusal(self, action: str, sub: Subscriber) -> str | None:
        assert self.engine is not None
        state = self.engine.state_of(sub)
        if action == "promise":
            return promise_refusal(self.cfg.promise, sub, state)
        if not self.cfg.resume.enabled:
            return "disabled"
        return None if state is State.PAUSED else "state"

    async def _request(self, action: str, ip: str, key: str) -> dict[str, Any] | None:
        sub = self._owner(ip)
        if sub is None:
            return None
        account = sub.account
        seen = self.recent.find(key)
        if seen is not None:
            if (seen.account, seen.action) != (account, action):
                log.warning("self-service %s for account=%s: request id reused by another "
                            "request, refused", action, account)
                return self._done(action, account, ip, key, False, "bad_request")
            log.info("self-service %s for account=%s: repeated request id, same answer",
                     action, account)
            return dict(await asyncio.shield(seen.answer))
        if not (self.by_address.allow(ip) and self.by_account.allow(account)):
            return self._done(action, account, ip, key, False, "rate_limited")
        refusal = self._local_refusal(action, sub)
        if refusal is not None or self.hook is None:
            return self._done(action, account, ip, key, False, refusal or "disabled")
        item = self.recent.start(key, account, action)
        task = asyncio.get_running_loop().create_task(
            self._ask(action, account, ip, key, item), name=f"selfservice-{action}-{account}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return dict(await asyncio.shield(item.answer))

    async def _ask(self, action: str, account: str, ip: str, key: str, item: Any) -> None:
        """Runs apart from the portal's request: a closed browser tab cancels nothing."""
        assert self.hook is not None
        days = self.cfg.promise.days if action == "promise" else 0
        answer: dict[str, Any] = {"ok": False, "reason": "billing_error"}
        try:
            got = await self.hook.call(action, account, key, days=days, address=ip)
            answer = self._done(action, account, ip, key, got.ok,
                                None if got.ok else (got.reason or "refused"))
        except HookFailed as exc:
            log.warning("self-service %s for account=%s: the billing's hook failed (%s): %s",
                        action, account, exc.reason, exc)
            answer = self._done(action, account, ip, key, False, exc.reason)
        except Exception:
            log.exception("self-service %s for account=%s: hook crashed", action, account)
        finally:
            self.recent.finish(key, item, answer)

    def _done(self, action: str, account: str, ip: str, key: str, ok: bool,
              reason: str | None) -> dict[str, Any]:
        days = self.cfg.promise.days if action == "promise" else 0
        audit(f"selfservice_{action}", account=account, address=ip, request_id=key, ok=ok,
              reason=reason, days=days or None)
        if ok:
            log.info("self-service %s for account=%s from %s accepted by the billing",
                     action, account, ip)
        else:
            log.info("self-service %s for account=%s from %s refused: %s",
                     action, account, ip, reason)
        answer: dict[str, Any] = {"ok": ok, "reason": reason, "action": action}
        if days:
            answer["days"] = days
        return answer
