"""The daemon's answers to the NOC: status, readiness, explain, overrides, guard.

Implements the management API's ``ManagementBackend`` over a running
:class:`~debtgate.daemon.app.Daemon`.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from datetime import datetime
from typing import Any

from debtgate import __version__
from debtgate.core.desired import where_is
from debtgate.core.sets import ACK_SETS, ENFORCEMENT_SETS, GARDEN_SETS
from debtgate.enforce.inventory import Placements
from debtgate.enforce.persist import subscriber_row
from debtgate.host import AdminHost


class Admin:
    def __init__(self, daemon: AdminHost) -> None:
        self.daemon = daemon

    @property
    def engine(self) -> Any:
        return self.daemon.engine

    def health(self) -> dict[str, Any]:
        return {"alive": True, "version": __version__,
                "uptime": round(time.time() - self.daemon.started, 1)}

    def ready(self) -> tuple[bool, str]:
        """Ready: synced with billing, or, before the first snapshot is applied, the
        kernel enforcing a state (adopted at a restart, restored after a reboot) while
        the feed listens (a payment takes effect at once; the snapshot only repairs
        what changed while the daemon was down). Not ready: nothing enforced and not
        synced, or the feed stale for longer than ``readiness_budget``."""
        eng = self.engine
        health = self.daemon.source.health
        if not eng.stats.synced:
            if health.listening and eng.enforcing():
                return True, "following billing; the first snapshot is being applied"
            return False, "not synced with billing yet"
        budget = self.daemon.config.daemon.readiness_budget
        last = health.last_snapshot or health.last_event
        if health.connected is False and last is not None and time.time() - last > budget:
            return False, f"billing feed stale for {time.time() - last:.0f} s"
        return True, "ok"

    def sync(self) -> dict[str, Any]:
        """Whether the kernel follows billing, and why not: ``{"in_sync", "reason"}``."""
        eng = self.engine
        health = self.daemon.source.health
        if not eng.stats.synced:
            why = "never synced with billing yet"
            if health.last_error:
                why += f" (last error: {health.last_error})"
            return {"in_sync": False, "reason": why}
        if health.connected is False:
            last = health.last_event or health.last_snapshot
            when = ("never heard from" if last is None
                    else f"last heard from {time.time() - last:.0f} s ago")
            why = f"billing feed disconnected ({when})"
            if health.last_error:
                why += f": {health.last_error}"
            return {"in_sync": False, "reason": why}
        if eng.held:
            since = eng.held_since
            ago = "" if since is None else f" for {time.time() - since:.0f} s"
            return {"in_sync": False,
                    "reason": f"mass-change guard holding {len(eng.held)} restrictions{ago}; "
                              "review, then `debtgate approve`"}
        return {"in_sync": True, "reason": "following billing"}

    def status(self) -> dict[str, Any]:
        eng = self.engine
        placed = eng.placed
        states = (placed.counts() if isinstance(placed, Placements)
                  else Counter(st.value for st in placed.values()))
        health = self.daemon.source.health
        feed = health.as_dict()
        feed["rejected"] = dict(eng.rejections)
        feed["foreign"] = {"rows": eng.foreign_rows, "addresses": eng.foreign_addresses}
        desired = {**eng.desired, **eng.garden}
        sets = {name: {"desired": len(desired.get(name, ())),
                       "kernel": len(eng.committed.get(name, ()))}
                for name in (*ENFORCEMENT_SETS, *GARDEN_SETS)}
        out: dict[str, Any] = {
            "version": __version__,
            "uptime": round(time.time() - self.daemon.started, 1),
            "feed": feed,
            "subscribers": dict(states),
            "sets": sets,
            "drift_repairs": eng.stats.drift_repairs,
            "applies": eng.stats.applies,
            "kernel_writes": eng.stats.kernel_writes,
            "apply_errors": eng.stats.apply_errors,
            "last_apply_seconds": round(eng.stats.last_apply_seconds, 6),
            "conntrack_cut": eng.stats.conntrack_cut,
            "bulk_slices": eng.turn.slices,
            "urgent_first": eng.turn.overtaken,
            "garden": {"static": sum(len(v) for v in eng.garden.values()), "domains": {}},
            "radius": {},
            "portal": {"views": eng.portal.views, "acks": eng.portal.acks,
                       "errors": eng.portal.errors},
            "guard": {"holding": bool(eng.held), "held_restrictions": len(eng.held),
                      "threshold_percent": eng.guard.share * 100,
                      "threshold_count": eng.guard.count, "since": eng.held_since},
            "overrides": len(eng.overrides),
            "degraded": dict(self.daemon.degraded),
            "sync": self.sync(),
        }
        for ext in self.daemon.extensions:
            ext.status(out)
        return out

    def explain(self, key: str) -> dict[str, Any] | None:
        eng = self.engine
        sub = eng.inventory.find(key.strip())
        if sub is None:
            return self._foreign(key.strip())
        kernel_sets = {}
        for addr in sub.addresses:
            kernel_sets[addr] = where_is({n: eng.committed.get(n, set())
                                          for n in (*ENFORCEMENT_SETS, *ACK_SETS)}, addr)
        override = eng.overrides.get(sub.account)
        out: dict[str, Any] = {
            "account": sub.account,
            "asked": key,
            "billing": subscriber_row(sub),
            "billing_state": sub.state.value,
            "enforced_state": eng.placed.get(sub.account, sub.state).value,
            "why": self._why(sub),
            "sets": kernel_sets,
            "override": override.as_dict() if override else None,
            "held_by_guard": sub.account in eng.held,
            "acknowledged_until": eng.portal.acked.get(sub.account),
            "transitions": list(eng.announcer.history.get(sub.account, ())),
            "radius": None,
        }
        for ext in self.daemon.extensions:
            ext.explain(sub, out)
        return out

    def _foreign(self, key: str) -> dict[str, Any] | None:
        """An address outside ``[network] serves``: another gateway's, said so."""
        serves = self.engine.policy.serves
        try:
            ip = ipaddress.ip_address(key)
        except ValueError:
            return None
        if not serves or any(ip in net for net in serves if net.version == ip.version):
            return None
        return {"account": None, "asked": key, "foreign": True,
                "why": "outside this gateway's [network] serves "
                       f"({', '.join(map(str, serves))}): another gateway enforces it"}

    def _why(self, sub: Any) -> str:
        eng = self.engine
        if sub.account in eng.held:
            return (f"billing says {eng.held[sub.account].value}, but the mass-change guard "
                    "holds the restriction until approved")
        override = eng.overrides.get(sub.account)
        if override is not None and override.active(eng.clock()):
            return f"manual override ({override.action}) by {override.author}: {override.reason}"
        return f"billing state {sub.state.value}"

    def list_overrides(self) -> list[dict[str, Any]]:
        return [o.as_dict() for o in self.engine.overrides.values()]

    async def add_override(self, account: str, action: str, reason: str,
                           expires_at: datetime | None, author: str) -> dict[str, Any]:
        override = await self.daemon.add_override(account, action, reason, expires_at, author)
        return override.as_dict()

    async def delete_override(self, override_id: str, author: str) -> bool:
        return await self.daemon.delete_override(override_id, author)

    async def resync(self) -> None:
        """Ask billing for a full resync and reconcile the kernel (in the background)."""
        self.daemon.source.request_resync(full=True)
        self.daemon.spawn(self.engine.full_reconcile(), "resync")

    async def approve_guard(self, author: str) -> dict[str, Any]:
        if not self.engine.held:
            raise ValueError("the guard holds nothing")
        result: dict[str, Any] = await self.engine.approve(author)
        return result

