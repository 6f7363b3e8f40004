"""The daemon-facing API: :class:`CoaDispatcher`.

Wiring (in the daemon)::

    dispatcher = CoaDispatcher(config.radius)      # raises RadiusError on bad setup
    task_group.create_task(dispatcher.run())
    ...
    dispatcher.submit(Intent(sub.account, sub.state, sub.session or Session(), sub.addresses))
    ...
    dispatcher.status(); dispatcher.last_result(account)
    dispatcher.close()                              # run() returns
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pyrad.dictionary import Dictionary

from debtgate.config.radius import RadiusConfig, read_secret
from debtgate.errors import RadiusError
from debtgate.model import Session, State
from debtgate.radius.accounting import AccountingListener
from debtgate.radius.intent import Intent
from debtgate.radius.packets import load_dictionary
from debtgate.radius.profiles import Profile, load_profiles
from debtgate.radius.sessions import SessionTable
from debtgate.radius.worker import NasWorker

__all__ = ["CoaDispatcher", "Intent", "Session", "State"]

log = logging.getLogger(__name__)


class CoaDispatcher:
    """Routes intents to per-NAS workers and reports what happened."""

    def __init__(
        self, config: RadiusConfig, *, dictionary: Dictionary | None = None,
        profiles: Mapping[str, Profile] | None = None,
    ) -> None:
        self.config = config
        try:
            self.dictionary = dictionary or load_dictionary(list(config.dictionaries))
        except (OSError, ValueError) as exc:
            raise RadiusError(f"cannot load RADIUS dictionaries: {exc}") from exc
        self.profiles = dict(profiles) if profiles is not None else load_profiles(
            self.dictionary, config.profiles_dir)
        acct = config.accounting
        self.sessions = SessionTable(acct.max_sessions) if acct else None
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.workers: dict[str, NasWorker] = {}
        self._by_address: dict[str, str] = {}
        for nas in config.nas:
            if nas.profile not in self.profiles:
                raise RadiusError(f"nas {nas.name}: unknown profile {nas.profile!r} "
                                  f"(known: {', '.join(sorted(self.profiles))})")
            self.workers[nas.name] = NasWorker(nas, read_secret(nas.secret_file),
                                               self.profiles[nas.profile], self.dictionary,
                                               self.sessions, self._record)
            self._by_address[nas.address] = nas.name
            if nas.nas_ip:
                self._by_address[nas.nas_ip] = nas.name
        self.listener: AccountingListener | None = None
        if acct is not None and self.sessions is not None:
            by_ident = {n.nas_identifier: n.name for n in config.nas if n.nas_identifier}
            self.listener = AccountingListener(acct, read_secret(acct.secret_file),
                                               self.dictionary, self.sessions,
                                               self._by_address, by_ident)
        self.unroutable = 0
        self._closed = asyncio.Event()

    def _record(self, account: str, result: dict[str, Any]) -> None:
        self._results.pop(account, None)
        self._results[account] = result
        while len(self._results) > self.config.results_limit:
            self._results.popitem(last=False)

    def route(self, intent: Intent) -> NasWorker | None:
        """The NAS worker for an intent: billing NAS, accounting NAS, or the only NAS."""
        nas = intent.session.nas
        if nas:
            name = nas if nas in self.workers else self._by_address.get(nas)
            return self.workers.get(name) if name else None
        if self.sessions is not None:
            s = intent.session
            hit = self.sessions.find(intent.account, intent.addresses, s.user_name)
            if hit is not None and hit.nas in self.workers:
                return self.workers[hit.nas]
        if len(self.workers) == 1:
            return next(iter(self.workers.values()))
        return None

    def submit(self, intent: Intent) -> None:
        """Queue an intent (non-blocking); a later intent for the account replaces it."""
        worker = self.route(intent)
        if worker is None:
            self.unroutable += 1
            log.warning("account=%s nas=%s no NAS known for this session, nothing sent",
                        intent.account, intent.session.nas)
            self._record(intent.account, {"account": intent.account, "nas": intent.session.nas,
                                          "intent": intent.kind, "result": "no_nas",
                                          "request": None})
            return
        worker.submit(intent)

    def status(self) -> dict[str, Any]:
        """Per-NAS counters for the status endpoint and metrics."""
        out: dict[str, Any] = {
            "enabled": self.config.enabled,
            "unroutable": self.unroutable,
            "nas": {name: w.status() for name, w in self.workers.items()},
        }
        if self.listener is not None and self.sessions is not None:
            out["accounting"] = {"sessions": len(self.sessions),
                                 "evicted": self.sessions.evicted,
                                 **dict(self.listener.counters)}
        return out

    def last_result(self, account: str) -> dict[str, Any] | None:
        """The last request and its result for ``account``, if any."""
        result = self._results.get(account)
        return dict(result) if result is not None else None

    def close(self) -> None:
        """Make :meth:`run` return (queued intents are abandoned)."""
        self._closed.set()

    async def run(self) -> None:
        """Serve until :meth:`close`; a crashed worker is re-raised."""
        if self.listener is not None:
            await self.listener.start()
        tasks = [asyncio.create_task(w.run(), name=f"coa-{n}") for n, w in self.workers.items()]
        closed = asyncio.create_task(self._closed.wait())
        try:
            done, _ = await asyncio.wait([closed, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not closed:
                    task.result()
        finally:
            for task in [closed, *tasks]:
                task.cancel()
            await asyncio.gather(closed, *tasks, return_exceptions=True)
            if self.listener is not None:
                self.listener.close()
