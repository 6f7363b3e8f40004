"""Running the portal: one process, or several workers sharing the port (SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import ssl
from types import FrameType

import uvloop
from aiohttp import web

from debtgate.config.portal import PortalConfig
from debtgate.portal.app import make_app
from debtgate.portal.fastpath import FastTCPSite
from debtgate.portal.lookup import DaemonLink, UnixSocketLink
from debtgate.portal.security import load_secret
from debtgate.portal.state import PORTAL

log = logging.getLogger(__name__)


def tls_context(config: PortalConfig) -> ssl.SSLContext | None:
    """The server TLS context of the HTTPS listener, or None when it is not configured."""
    if config.tls_cert_file is None or config.tls_key_file is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(config.tls_cert_file), str(config.tls_key_file))
    return ctx


async def start(
    config: PortalConfig,
    link: DaemonLink,
    *,
    secret: bytes | None = None,
    reuse_port: bool = False,
) -> web.AppRunner:
    """Start the HTTP (and, if configured, HTTPS) listeners; return the runner."""
    app = make_app(config, link, secret=secret)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sites: list[web.TCPSite] = [
        FastTCPSite(runner, app[PORTAL], config.listen, config.port,
                    reuse_port=reuse_port or None, backlog=1024) if config.fast_path else
        web.TCPSite(runner, config.listen, config.port, reuse_port=reuse_port or None,
                    backlog=1024)]
    ctx = tls_context(config)
    if ctx is not None and config.https_port is not None:
        sites.append(web.TCPSite(runner, config.listen, config.https_port, ssl_context=ctx,
                                 reuse_port=reuse_port or None, backlog=1024))
    try:
        for site in sites:
            await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("portal listening on %s:%s%s (pid %s)",
             config.listen or "every address (IPv4 and IPv6)", config.port,
             f" and https :{config.https_port}" if ctx else "", os.getpid())
    return runner


async def serve(
    config: PortalConfig,
    link: DaemonLink | None = None,
    *,
    secret: bytes | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve the portal until cancelled (SIGTERM/SIGINT cancel it when run by
    :func:`run_portal`). Without ``link`` the daemon is reached over its Unix socket."""
    own = link is None
    real_link = UnixSocketLink(config.daemon_socket, cache_ttl=config.cache_ttl,
                               cache_size=config.cache_size) if own else None
    active: DaemonLink = real_link if real_link is not None else link  # type: ignore[assignment]
    runner = await start(config, active, secret=secret, reuse_port=reuse_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        if real_link is not None:
            await real_link.close()


async def _serve_until_signal(config: PortalConfig, secret: bytes, reuse_port: bool) -> None:
    task = asyncio.ensure_future(serve(config, secret=secret, reuse_port=reuse_port))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        log.info("portal worker %s stopped", os.getpid())


def _worker(config: PortalConfig, secret: bytes, reuse_port: bool, log_level: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):  # not the supervisor's handlers (fork)
        signal.signal(sig, signal.SIG_DFL)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level,
                            format="%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve_until_signal(config, secret, reuse_port))


def run_portal(config: PortalConfig, workers: int | None = None) -> int:
    """Run the portal in the foreground (what ``debtgate portal`` calls); return an exit code.

    With more than one worker, each worker is a forked process with its own uvloop
    loop binding the same port with SO_REUSEPORT. They share the CSRF secret (read or
    generated here). If a worker dies, the others are stopped and 1 is returned, so
    that systemd restarts the whole service.
    """
    count = workers if workers is not None else config.workers
    secret = load_secret(config.csrf_secret_file)
    level = logging.getLogger().getEffectiveLevel()
    if count <= 1:
        _worker(config, secret, False, level)
        return 0
    # fork, not spawn: nothing runs yet in this process (no loop, no threads), and
    # spawn would re-import the caller's __main__ module in every worker.
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_worker, args=(config, secret, True, level),
                    name=f"portal-{i}", daemon=True)
        for i in range(count)
    ]
    stopping = False

    def _stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)

    old = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for proc in procs:
            proc.start()
        log.info("portal started %d workers", count)
        multiprocessing.connection.wait([p.sentinel for p in procs])
        if not stopping:
            log.error("a portal worker exited; stopping the others")
            _stop(signal.SIGTERM, None)
            stopping = False
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return 0 if stopping else 1
