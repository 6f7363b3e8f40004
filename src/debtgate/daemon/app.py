"""The daemon process: one loop owner, one TaskGroup, named tasks.

``run(config_path)`` sets up uvloop through ``asyncio.Runner``; SIGTERM/SIGINT
set a shutdown event, SIGHUP reloads the config (a bad one is refused and the
running one kept; only changed sections are applied). Exit leaves enforcement
in the kernel.

Over 400 lines on purpose: the process's whole life in one reading order (start and
restore, the named tasks, the reload callbacks, shutdown and the last persist), each
part small; the work itself lives in the packages below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from debtgate import __version__
from debtgate.api.admin import Admin
from debtgate.billing.base import BillingSource
from debtgate.billing.file import FileSource
from debtgate.billing.memory import watch_gc
from debtgate.billing.rows import Policy
from debtgate.config import Config, load_config
from debtgate.config.reloads import Reloads
from debtgate.core.guard import GuardPolicy
from debtgate.core.reconcile import Plan
from debtgate.core.sets import ENFORCEMENT_SETS
from debtgate.daemon.extensions import default_extensions
from debtgate.daemon.sdnotify import notify
from debtgate.enforce.audit import SINKS as audit_sinks
from debtgate.enforce.audit import AuditFile, audit
from debtgate.enforce.engine import Engine
from debtgate.enforce.overrides import FileOverrideStore, Override, OverrideStore, new_override
from debtgate.enforce.persist import Change, StateFile
from debtgate.errors import DebtgateError
from debtgate.host import Extension
from debtgate.kernel.conntrack import BackgroundCutter, ConntrackCutter, NullCutter
from debtgate.kernel.conntrack_child import ProcessCutter
from debtgate.kernel.nft import NftAdapter, read_template, render_ruleset
from debtgate.model import State, Subscriber

log = logging.getLogger(__name__)


def policy_of(config: Config) -> Policy:
    net = config.network
    return Policy(min_prefix_v4=net.min_prefix_v4, min_prefix_v6=net.min_prefix_v6,
                  serves=tuple(net.serves), default_currency=net.default_currency)


def guard_of(config: Config) -> GuardPolicy:
    g = config.guard
    return GuardPolicy(enabled=g.enabled, share=g.share, count=g.count, min_count=g.min_count)


def ruleset_of(config: Config) -> str:
    nft = config.nft
    return render_ruleset(read_template(nft.ruleset), portal_v4=str(nft.portal_v4),
                          portal_v6=str(nft.portal_v6) if nft.portal_v6 else None,
                          portal_port=nft.portal_port, portal_tls_port=nft.portal_tls_port)


def make_source(config: Config) -> BillingSource:
    if config.source.kind == "postgres":
        from debtgate.billing.postgres import PostgresSource  # noqa: PLC0415 - optional

        return PostgresSource.from_config(config)
    f = config.source.file
    return FileSource(f.path, f.format, f.poll_interval, f.encoding)


class Daemon:
    def __init__(self, config: Config, config_path: Path | None = None,
                 nft: NftAdapter | None = None) -> None:
        self.reloads = Reloads(config)
        self.config_path = config_path
        self.started = time.time()
        self.shutdown = asyncio.Event()
        self.nft = nft or NftAdapter()
        self.cuts: BackgroundCutter | None = None
        self.cut_child: ProcessCutter | None = None
        cutter: ConntrackCutter = NullCutter()
        if config.nft.conntrack:
            self.cut_child = ProcessCutter()
            cutter = self.cuts = BackgroundCutter(self.cut_child, self._count_cut)
        self.engine = Engine(self.nft, cutter, policy_of(config), config.nft.ack_timeout)
        self.engine.guard = guard_of(config)
        state_dir = config.daemon.state_dir
        self.statefile = StateFile(state_dir / "applied.json")
        self.local_overrides = FileOverrideStore(state_dir / "overrides.json")
        self.override_store: OverrideStore = self.local_overrides
        self.shared: Any = None
        if config.source.kind == "postgres" and config.source.postgres is not None:
            from debtgate.enforce.shared import PgShared, SharedOverrides  # noqa: PLC0415

            pg = config.source.postgres
            self.shared = PgShared(pg.dsn.get_secret_value() if pg.dsn else None, pg.dsn_file)
            self.override_store = SharedOverrides(self.shared, self.local_overrides)
        self.engine.on_applied = self._persist_change
        self.management = Admin(self)
        self.source = make_source(config)
        self.degraded: dict[str, str] = {}
        self._source_task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self.extensions: list[Extension] = []
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        """Load the ruleset (never flushing sets), adopt the kernel's state, restore it after
        a reboot, apply the garden."""
        await self.nft.load_ruleset(ruleset_of(self.config))
        await self.engine.adopt_kernel()
        for override in await self.override_store.load():
            if override.active(self.engine.clock()):
                self.engine.overrides[override.account] = override
        saved = self.statefile.load()
        if saved is not None and self.engine.enforcing():  # a restart: the kernel holds it
            recalled = self.engine.recall(saved.subscribers)
            log.info("recalled %d restricted subscribers of the last applied state (%d "
                     "persisted)", recalled, len(saved.subscribers))
        elif saved is not None and any(saved.sets.values()):  # a reboot: the table is empty
            if self.config.daemon.fail_open:
                log.warning("kernel table is empty (reboot?) and fail_open is set: "
                            "nobody is restricted until billing answers")
            else:
                writes = await self.engine.restore(saved.sets, saved.subscribers)
                log.warning("kernel table was empty (reboot?): restored %d elements of the "
                            "last applied state before billing answers", writes)
        if not self.engine.enforcing():  # a first start: restrictions before the rest
            self.source.prefer_restricted()
        g = self.config.garden
        self.engine.set_garden([str(c) for c in g.cidrs], [str(r) for r in g.resolvers])
        await self.engine.apply_garden()

    async def _run_source(self) -> None:
        backoff = 1.0
        while True:
            try:
                await self.source.run(self.engine.handle, self.engine.turn.hold)
                return
            except DebtgateError as exc:
                self.degraded["source"] = str(exc)
                log.error("billing source failed, retrying in %.0f s: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _reconcile_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.daemon.reconcile_interval)
            try:
                if not await self.nft.table_exists():
                    log.error("table inet debtgate is gone (deleted by hand?): reloading the "
                              "ruleset and repairing every set")
                    audit("table_recreated")
                    await self.nft.load_ruleset(ruleset_of(self.config))
                await self.engine.full_reconcile()
                self.degraded.pop("kernel", None)
            except DebtgateError as exc:
                self.degraded["kernel"] = str(exc)
                log.error("reconcile failed: %s", exc)
            self.source.request_resync()

    def _collect_state(self) -> None:
        eng = self.engine
        # Only non-active placements matter (Placements stores nothing else).
        placed = getattr(eng.placed, "other", eng.placed)
        inv, active = eng.inventory, State.ACTIVE
        accounts = [a for a, st in placed.items() if st is not active]
        # Restricted accounts are held full: looked up in C; the rest one by one.
        subs = list(map(inv.full.get, accounts))
        subs = [sub if sub is not None else inv.get(a)
                for a, sub in zip(accounts, subs, strict=True)] if not all(subs) else subs
        self.statefile.take({n: eng.committed.get(n, set()) for n in ENFORCEMENT_SETS},
                            [sub for sub in subs if sub is not None])

    def _persist_change(self, plan: Plan | None, accounts: Sequence[str]) -> None:
        """The engine applied a change: a small one goes to the journal as it is now (the
        restricted accounts' subscribers, the others dropped), bulk work gets a new base."""
        if plan is None:
            self.statefile.mark()
            return
        eng = self.engine
        inv, placed, active = eng.inventory, eng.placed, State.ACTIVE
        put: list[Subscriber] = []
        drop: list[str] = []
        for account in accounts:
            state = placed.get(account)
            sub = inv.get(account) if state is not None and state is not active else None
            if sub is not None:
                put.append(sub)
            else:
                drop.append(account)
        self.statefile.record(Change(
            add={d.name: list(d.add) for d in plan.changes if d.add and d.name in ENFORCEMENT_SETS},
            delete={d.name: list(d.delete) for d in plan.changes
                    if d.delete and d.name in ENFORCEMENT_SETS},
            put=put, drop=drop))

    async def _expire_overrides(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = self.engine.clock()
            expired = [o for o in self.engine.overrides.values() if not o.active(now)]
            for override in expired:
                del self.engine.overrides[override.account]
                audit("override_expired", **override.as_dict())
                log.info("override %s expired for account=%s", override.id, override.account)
            if expired:
                await self.override_store.save(list(self.engine.overrides.values()))
                await self.engine.reapply([o.account for o in expired], "override expired",
                                          bypass_guard=False)

    async def _listen_overrides(self) -> None:
        """Apply overrides another gateway changed in the shared database."""
        changed = asyncio.Event()
        listener = self.spawn(self.shared.listen(changed.set), "shared-overrides-listen")
        try:
            while True:
                await changed.wait()
                changed.clear()
                try:
                    fresh = {o.account: o for o in await self.override_store.load()}
                except DebtgateError as exc:
                    log.warning("shared overrides unreadable: %s", exc)
                    continue
                touched = {a for a in set(fresh) | set(self.engine.overrides)
                           if fresh.get(a) != self.engine.overrides.get(a)}
                self.engine.overrides.clear()
                self.engine.overrides.update(fresh)
                if touched:
                    log.info("overrides changed on another gateway: %d accounts", len(touched))
                    await self.engine.reapply(touched, "override (shared)")
        finally:
            listener.cancel()

    async def add_override(self, account: str, action: str, reason: str,
                           expires_at: datetime | None, author: str) -> Override:
        if self.engine.inventory.get(account) is None:
            raise ValueError(f"unknown account {account!r} (not in billing on this gateway)")
        override = new_override(account, action, reason, self.engine.clock(), expires_at,
                                author)
        self.engine.overrides[account] = override
        await self.override_store.save(list(self.engine.overrides.values()))
        audit("override_added", **override.as_dict())
        log.warning("override %s: %s account=%s by %s: %s", override.id, action, account,
                    author, reason)
        await self.engine.reapply([account], f"override {override.id} by {author}")
        return override

    async def delete_override(self, override_id: str, author: str) -> bool:
        found = next((o for o in self.engine.overrides.values() if o.id == override_id), None)
        if found is None:
            return False
        del self.engine.overrides[found.account]
        await self.override_store.save(list(self.engine.overrides.values()))
        audit("override_deleted", deleted_by=author, **found.as_dict())
        await self.engine.reapply([found.account], f"override {override_id} deleted by {author}",
                                  bypass_guard=False)
        return True

    async def _watchdog(self) -> None:
        while True:
            notify("WATCHDOG=1")
            await asyncio.sleep(5)

    async def _ready(self, grace: float = 10.0) -> None:
        """sd_notify READY=1 once the management API's readiness holds
        (:meth:`Admin.ready`: synced, or enforcing while the feed listens). After
        ``grace`` seconds without it, billing unreachable, READY=1 too if the kernel
        already enforces a state (adopted at a restart, restored after a reboot): the
        unit is started, degraded, with the reason in STATUS. With nothing enforced and
        billing not synced, the daemon is not ready (systemd's start timeout decides),
        rather than "started" while nobody is restricted."""
        eng = self.engine
        deadline = time.monotonic() + grace
        told = early = False
        while True:
            ok, why = self.management.ready()
            if eng.stats.synced and (ok or early):
                status = f"STATUS=enforcing {len(eng.inventory)} subscribers"
                if early:  # READY=1 was sent: the status line follows the first snapshot
                    notify(status)
                    log.info("debtgate %s synced: %d subscribers", __version__,
                             len(eng.inventory))
                else:
                    notify(f"READY=1\n{status}")
                    log.info("debtgate %s ready: %d subscribers", __version__,
                             len(eng.inventory))
                return
            if ok and not early:
                early = True
                notify(f"READY=1\nSTATUS=enforcing the kernel's state; {why}")
                log.info("debtgate %s ready: enforcing the kernel's state, %s", __version__,
                         why)
            elif not early and time.monotonic() >= deadline:
                if eng.enforcing():
                    why = self.degraded.get("source") or "billing not synced yet"
                    notify(f"READY=1\nSTATUS=enforcing the last applied state; {why}")
                    log.warning("debtgate %s ready: enforcing the last applied state before "
                                "the first billing sync (%s)", __version__, why)
                    return
                if not told:
                    told = True
                    log.warning("not ready: billing not synced after %.0f s and nothing "
                                "enforced yet", grace)
            await asyncio.sleep(0.05)

    async def _run_cuts(self, cuts: BackgroundCutter) -> None:
        if self.cut_child is not None:
            try:
                await self.cut_child.start()
            except OSError as exc:  # the next cut tries again
                log.warning("conntrack child did not start: %s", exc)
        await cuts.run()

    def _count_cut(self, deleted: int) -> None:
        self.engine.stats.conntrack_cut += deleted

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        assert self._tg is not None
        task = self._tg.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    @property
    def config(self) -> Config:
        """The running config (the reload registry owns it)."""
        return self.reloads.current

    def _watch(self) -> None:
        """The daemon's own parts, each reloaded when its sections change."""
        r = self.reloads
        r.check("the ruleset (nft -c)", ["nft"],
                lambda _old, new: self.nft.check_ruleset(ruleset_of(new)))
        r.on("the ruleset", ["nft"], self._reload_nft)
        r.on("the walled garden", ["garden.cidrs", "garden.resolvers"], self._reload_garden)
        r.on("the guard", ["guard"], self._reload_guard)
        r.on("the network policy (a full resync)", ["network"], self._reload_network)
        r.on("the billing source (restarted)", ["source"], self._reload_source)
        r.on("the log level", ["daemon.log_level"], self._reload_log_level)
        r.live("read where used", ["daemon.reconcile_interval", "daemon.readiness_budget"])
        r.on("the portal (its own process)", ["portal"], self._reload_portal)

    async def _reload_nft(self, _old: Config, new: Config) -> None:
        await self.nft.load_ruleset(ruleset_of(new))
        self.engine.ack_timeout = new.nft.ack_timeout

    async def _reload_garden(self, _old: Config, new: Config) -> None:
        g = new.garden
        self.engine.set_garden([str(c) for c in g.cidrs], [str(r) for r in g.resolvers])
        await self.engine.apply_garden()

    async def _reload_guard(self, _old: Config, new: Config) -> None:
        self.engine.guard = guard_of(new)

    async def _reload_network(self, _old: Config, new: Config) -> None:
        self.engine.policy = policy_of(new)
        self.source.request_resync(full=True)

    async def _reload_source(self, _old: Config, new: Config) -> None:
        if self._source_task is not None:
            self._source_task.cancel()
            self.source = make_source(new)
            self._source_task = self.spawn(self._run_source(), "source")

    async def _reload_log_level(self, _old: Config, new: Config) -> None:
        logging.getLogger("debtgate").setLevel(new.daemon.log_level.upper())

    async def _reload_portal(self, _old: Config, _new: Config) -> None:
        log.warning("reload: [portal] is read by the portal process: restart "
                    "debtgate-portal to apply it")

    async def reload(self) -> None:
        """SIGHUP: read the config file again; refused as a whole when invalid."""
        if self.config_path is None:
            return
        try:
            await self.reloads.reload(load_config(self.config_path))
        except DebtgateError as exc:  # ConfigError included
            log.error("reload refused, keeping the running config: %s", exc)

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.shutdown.set)
        loop.add_signal_handler(signal.SIGINT, self.shutdown.set)
        reload_wanted = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
        # The audit trail's shared copy: the billing database, or a local file.
        sink = (self.shared.record if self.shared is not None
                else AuditFile(self.config.daemon.state_dir / "audit.jsonl"))
        audit_sinks.append(sink)
        await self.start()
        watch_gc()
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self._source_task = self.spawn(self._run_source(), "source")
            self.spawn(self._reconcile_loop(), "reconcile")
            self.spawn(self._watchdog(), "watchdog")
            if self.cuts is not None:
                self.spawn(self._run_cuts(self.cuts), "conntrack")
            self.spawn(self._ready(), "ready")
            self.spawn(self.statefile.run(self._collect_state, self.engine.turn.no_bulk_job),
                       "persist")
            self.spawn(self._expire_overrides(), "overrides")
            if self.shared is not None:
                self.spawn(self.shared.run_audit(), "shared-audit")
                self.spawn(self._listen_overrides(), "shared-overrides")
                self.spawn(self.shared.run_held(
                    lambda: {a: str(st) for a, st in self.engine.held.items()}), "shared-held")
            self._watch()
            for ext in self.extensions:
                ext.watch(self.reloads)
                self.spawn(ext.run(self), type(ext).__name__)
            while not self.shutdown.is_set():
                waiter = asyncio.ensure_future(reload_wanted.wait())
                stopper = asyncio.ensure_future(self.shutdown.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                if reload_wanted.is_set():
                    reload_wanted.clear()
                    await self.reload()
            notify("STOPPING=1")
            log.info("stopping; enforcement stays in the kernel")
            for task in self._tasks:
                task.cancel()
        # The state as the kernel holds it now (a restart recalls it, a reboot restores it):
        # the writer task may not have run since the last change.
        try:
            self._collect_state()
            self.statefile.save_now()
        except OSError as exc:
            log.error("cannot persist the applied state at shutdown: %s", exc)
        if self.cut_child is not None:
            await self.cut_child.close()


async def _serve(config: Config, config_path: Path | None) -> None:
    daemon = Daemon(config, config_path)
    daemon.extensions = default_extensions(config)
    grace = config.daemon.shutdown_grace
    main = asyncio.ensure_future(daemon.main())
    await asyncio.wait({main, asyncio.ensure_future(daemon.shutdown.wait())},
                       return_when=asyncio.FIRST_COMPLETED)
    if not main.done():
        try:
            await asyncio.wait_for(asyncio.shield(main), grace)
        except TimeoutError:
            log.warning("tasks did not stop within %.0f s; exiting anyway", grace)
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await main
    main.result()


def run(config_path: Path) -> None:
    config = load_config(config_path)
    try:
        import uvloop  # noqa: PLC0415

        factory: Any = uvloop.new_event_loop
    except ImportError:  # pragma: no cover
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(config, config_path))
