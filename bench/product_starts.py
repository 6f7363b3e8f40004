"""Starts of the shipped daemon (scenario b), its RSS at rest (e), the periodic resync (d).

* **first start**: no ``inet debtgate`` table, no state directory. From the spawn:
  every restriction enforced (the watcher: every sampled blocked address, and every
  prober account's, refused; then ``nft -j list set`` holding the N/10 elements),
  ready (sd_notify READY=1, ``/readyz`` 200) and the first snapshot applied (the
  status in sync: ``synced_s``);
* **restart**: SIGTERM, then the same config again (plus ``resync_interval = 5`` so
  that a periodic resync, the fingerprint kind, follows): ready, the kernel writes
  the status counts at ready and 2 s later (the kernel held the state: 0), the first
  snapshot applied (the status in sync: ``synced_s``) and its writes;
* **reboot**: SIGTERM, the table deleted and conntrack flushed, the billing stopped;
  from the spawn: every restriction restored from the persisted state (watcher and
  kernel count as above), then the billing started again: seconds until ready.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from product_billing import restricted_addresses
from product_daemon import rss_mb
from product_lab import Lab, until
from product_net import drop_table, wait_kernel_holds


def _restricted_sample(lab: Lab) -> list[str]:
    return [*lab.plan.start_sample.values(), *lab.plan.probers.values()]


async def _enforced(lab: Lab, t0: float, deadline: float) -> dict[str, Any]:
    seen, missing = await lab.watcher.result(timeout=deadline + 10)
    counted = await wait_kernel_holds(lab.gw, set(restricted_addresses(lab.plan)),
                                      deadline=deadline, exact=True)
    return {"enforced_sample_s": None if missing else round(max(seen.values()) - t0, 3),
            "kernel_count_s": None if counted is None else round(counted - t0, 3)}


async def _synced(lab: Lab) -> bool:
    return bool((await lab.daemon.status())["sync"]["in_sync"])


async def first_start(lab: Lab) -> dict[str, Any]:
    await lab.watcher.begin(_restricted_sample(lab), "refused", timeout=300, pause=0.005)
    t0 = await lab.daemon.start()
    ready = asyncio.create_task(lab.daemon.wait_ready())
    out = await _enforced(lab, t0, 300)
    out.update(await ready)
    # Ready comes once the restrictions are enforced and the feed listens; the rest of
    # the first snapshot follows (the status in sync).
    seen = await until(lambda: _synced(lab), 300, interval=0.1)
    out["synced_s"] = None if seen is None else round(seen - t0, 3)
    st = await lab.daemon.status()
    out["kernel_writes"] = st["kernel_writes"]
    # At rest: the announcements, the audit copy and the first persisted write are done.
    await asyncio.sleep(5)
    out["rss_rest_mb"] = rss_mb(lab.daemon.pid)
    out["rss_hwm_mb"] = rss_mb(lab.daemon.pid, "VmHWM")
    return out


async def restart(lab: Lab) -> dict[str, Any]:
    await lab.daemon.stop()
    lab.daemon.write_config(source_extra="resync_interval = 5")
    t0 = await lab.daemon.start()
    out: dict[str, Any] = dict(await lab.daemon.wait_ready())
    st = await lab.daemon.status()
    out["kernel_writes_at_ready"] = st["kernel_writes"]
    await asyncio.sleep(2)
    st = await lab.daemon.status()
    out["kernel_writes_2s_later"] = st["kernel_writes"]
    out["spawn_to_status_s"] = round(time.monotonic() - t0, 3)

    # Ready comes before the first snapshot is applied (the kernel's state, the feed
    # listening): then the snapshot, in the status as in sync.
    seen = await until(lambda: _synced(lab), 300, interval=0.1)
    out["synced_s"] = None if seen is None else round(seen - t0, 3)
    st = await lab.daemon.status()
    out["kernel_writes_at_sync"] = st["kernel_writes"]
    # The periodic resync (fingerprints: the rows' versions compared) that follows
    # (resync_interval = 5 s). The first snapshot's own end may be stamped just after
    # the status shows it in sync: a resync counts if it ended over a second later.
    synced_wall, writes = time.time(), st["kernel_writes"]

    async def resynced() -> bool:
        last = (await lab.daemon.status())["feed"]["last_snapshot"]
        return last is not None and last > synced_wall + 1.0

    await until(resynced, 300, interval=0.2)
    st = await lab.daemon.status()
    out["periodic_resync"] = {"daemon_resync_s": st["feed"].get("last_resync_seconds"),
                              "kernel_writes": st["kernel_writes"] - writes}
    out["rss_after_restart_mb"] = rss_mb(lab.daemon.pid)
    return out


async def reboot(lab: Lab) -> dict[str, Any]:
    await lab.daemon.stop()
    await lab.disconnect()
    drop_table(lab.gw)
    await asyncio.to_thread(lab.server.stop)
    await lab.watcher.begin(_restricted_sample(lab), "refused", timeout=300, pause=0.005)
    t0 = await lab.daemon.start()
    out = await _enforced(lab, t0, 300)
    # The restore comes before the management API listens (a small lab restores first):
    # /readyz is asked once the socket answers.
    answered: list[int] = []

    async def readyz() -> bool:
        try:
            code, _ = await lab.daemon.api("GET", "/readyz")
        except aiohttp.ClientConnectionError:
            return False
        answered.append(code)
        return True

    await until(readyz, 60, interval=0.05)
    out["readyz_while_billing_down"] = answered[0] if answered else None
    await asyncio.to_thread(lab.server.start)
    back = time.monotonic()

    async def ready() -> bool:
        code, _ = await lab.daemon.api("GET", "/readyz")
        return bool(code == 200)

    seen = await until(ready, 600, interval=0.05)
    out["ready_after_billing_back_s"] = None if seen is None else round(seen - back, 3)
    await lab.connect()
    return out
