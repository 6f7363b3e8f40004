"""The billing's self-service hooks: a SQL function call or a signed HTTP webhook.

Both answer ``(ok, reason)``; the billing decides. A hook that cannot answer raises
:class:`HookFailed` with ``billing_timeout``, ``billing_unavailable`` or
``billing_error``, and nothing is assumed to have changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import asyncpg

from debtgate.billing.pgfetch import load_dsn
from debtgate.config.selfservice import HookSection
from debtgate.errors import ConfigError, HookError, SourceError

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Debtgate-Signature"


@dataclass(frozen=True, slots=True)
class HookAnswer:
    ok: bool
    reason: str | None = None


class HookFailed(HookError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Hook(Protocol):
    async def call(self, action: str, account: str, key: str, *, days: int = 0,
                   address: str = "") -> HookAnswer: ...

    async def close(self) -> None: ...


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Debtgate-Signature`` value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _answer(ok: object, reason: object) -> HookAnswer:
    if not isinstance(ok, bool):
        raise HookFailed("billing_error", f"the hook answered ok={ok!r}, not a boolean")
    text = str(reason)[:80] if reason not in (None, "") else None
    return HookAnswer(ok, text)


class SqlHook:
    """Calls the billing's function in a transaction through a small asyncpg pool."""

    def __init__(self, cfg: HookSection, fallback_dsn: Any = None,
                 fallback_file: Any = None) -> None:
        self.cfg = cfg
        self._dsn = cfg.dsn.get_secret_value() if cfg.dsn else None
        self._dsn_file = cfg.dsn_file
        if self._dsn is None and self._dsn_file is None:
            self._dsn = fallback_dsn.get_secret_value() if fallback_dsn else None
            self._dsn_file = fallback_file
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                dsn = load_dsn(self._dsn, self._dsn_file)
                self._pool = await asyncpg.create_pool(
                    dsn, min_size=0, max_size=self.cfg.pool_size, timeout=self.cfg.timeout)
            return self._pool

    async def call(self, action: str, account: str, key: str, *, days: int = 0,
                   address: str = "") -> HookAnswer:
        query, args = ((self.cfg.promise_query, (account, days, key)) if action == "promise"
                       else (self.cfg.resume_query, (account, key)))
        try:
            async with asyncio.timeout(self.cfg.timeout):
                pool = await self._get_pool()
                async with pool.acquire() as conn, conn.transaction():
                    row = await conn.fetchrow(query, *args)
        except TimeoutError as exc:
            raise HookFailed("billing_timeout", f"no answer in {self.cfg.timeout} s") from exc
        except asyncpg.PostgresError as exc:
            raise HookFailed("billing_error", f"{type(exc).__name__}: {exc}") from exc
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, SourceError) as exc:
            raise HookFailed("billing_unavailable", f"{type(exc).__name__}: {exc}") from exc
        except asyncpg.InterfaceError as exc:  # e.g. the query's parameters do not fit
            raise HookFailed("billing_error", f"{type(exc).__name__}: {exc}") from exc
        if row is None:
            raise HookFailed("billing_error", "the hook's query returned no row")
        return _answer(row.get("ok"), row.get("reason"))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


class HttpHook:
    """POSTs a JSON request signed with HMAC-SHA256 (``X-Debtgate-Signature``)."""

    def __init__(self, cfg: HookSection) -> None:
        assert cfg.url is not None and cfg.secret_file is not None
        self.cfg = cfg
        self.url = cfg.url
        self._session: aiohttp.ClientSession | None = None

    def _secret(self) -> bytes:
        assert self.cfg.secret_file is not None
        try:
            secret = self.cfg.secret_file.read_bytes().strip()
        except OSError as exc:
            raise HookFailed("billing_unavailable",
                             f"cannot read the hook secret file: {exc.strerror}") from exc
        if len(secret) < 16:
            raise HookFailed("billing_unavailable", "the hook secret holds fewer than 16 bytes")
        return secret

    async def call(self, action: str, account: str, key: str, *, days: int = 0,
                   address: str = "") -> HookAnswer:
        payload = {"action": action, "account": account, "request_id": key,
                   "address": address, "sent_at": int(time.time())}
        if action == "promise":
            payload["days"] = days
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret(), body),
                   "X-Debtgate-Request-Id": key}
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        try:
            async with self._session.post(self.url, data=body, headers=headers,
                                          allow_redirects=False) as resp:
                if resp.status != 200:
                    raise HookFailed("billing_error", f"the webhook answered HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except TimeoutError as exc:
            raise HookFailed("billing_timeout", f"no answer in {self.cfg.timeout} s") from exc
        except aiohttp.ClientConnectionError as exc:
            raise HookFailed("billing_unavailable", f"{type(exc).__name__}: {exc}") from exc
        except (aiohttp.ClientError, ValueError) as exc:
            raise HookFailed("billing_error", f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise HookFailed("billing_error", "the webhook's answer is not a JSON object")
        return _answer(data.get("ok"), data.get("reason"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_hook(cfg: HookSection, source_postgres: Any = None) -> Hook:
    """The hook of ``cfg``; the SQL hook falls back to the postgres source's DSN."""
    if cfg.kind == "http":
        return HttpHook(cfg)
    if cfg.dsn is None and cfg.dsn_file is None and source_postgres is None:
        raise ConfigError(["selfservice.hook: kind = \"sql\" needs dsn, dsn_file or a "
                           "[source.postgres] section"])
    return SqlHook(cfg, getattr(source_postgres, "dsn", None),
                   getattr(source_postgres, "dsn_file", None))
