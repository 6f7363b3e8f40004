"""Queries of the PostgreSQL source: codecs, column checks, fingerprints, DSN handling.

Both configured queries are wrapped, so the server also returns a 64-bit
fingerprint of each row (``hashtextextended(row::text, 0)``): a resync then
fetches only ``(account, fingerprint)`` and asks full rows for the accounts
whose fingerprint changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from ..errors import SourceError

Mapping.register(asyncpg.Record)  # rows are read with .get(): no copy into dicts
FP = "_debtgate_fp"
REQUIRED = ("account", "addresses", "state")
_TEXTISH = {"text", "varchar", "bpchar", "name", "citext", "int2", "int4", "int8", "numeric"}
_ADDRESS_TYPES = {"text", "varchar", "bpchar", "inet", "cidr", "_text", "_varchar", "_inet",
                  "_cidr"}
_PASSWORD = re.compile(r"(password\s*=\s*)(\S+)", re.I)


def load_dsn(dsn: str | None, dsn_file: Path | None) -> str:
    if dsn:
        return dsn
    if dsn_file is None:
        raise SourceError("postgres: neither dsn nor dsn_file is set")
    try:
        text = dsn_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SourceError(f"postgres: cannot read dsn_file {dsn_file}: {exc.strerror}") from None
    if not text:
        raise SourceError(f"postgres: dsn_file {dsn_file} is empty")
    return text


def redact(dsn: str) -> str:
    """The DSN without its password (for logs and the status endpoint)."""
    if "://" not in dsn:
        return _PASSWORD.sub(r"\1***", dsn)
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        cred, hosts = netloc.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}" if ":" in cred else f"{user}@{hosts}"
    query = re.sub(r"(password=)[^&]*", r"\1***", parts.query)
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _bare(query: str) -> str:
    return query.strip().rstrip(";").strip()


def full_query(query: str) -> str:
    """The configured query with each row's fingerprint as an extra column."""
    return f"SELECT q.*, hashtextextended(q::text, 0) AS {FP} FROM ({_bare(query)}) q"  # noqa: S608


def prints_query(query: str) -> str:
    """Only the account and the fingerprint of each row of the snapshot query."""
    return f"SELECT q.account::text, hashtextextended(q::text, 0) FROM ({_bare(query)}) q"  # noqa: S608


async def setup_codecs(conn: asyncpg.Connection) -> None:
    """Numbers and addresses as text: no Decimal or ipaddress object per row."""
    for name in ("numeric", "inet", "cidr"):
        await conn.set_type_codec(name, encoder=str, decoder=str, schema="pg_catalog",
                                  format="text")


def check_columns(stmt: Any, what: str) -> None:
    """A clear error if the query cannot produce contract rows (nothing is applied)."""
    types = {a.name: a.type.name for a in stmt.get_attributes()}
    missing = [c for c in REQUIRED if c not in types]
    if missing:
        raise SourceError(f"postgres: the {what} returns no column {', '.join(missing)} "
                          f"(it returns {', '.join(sorted(types)) or 'nothing'})")
    if types["account"] not in _TEXTISH:
        raise SourceError(f"postgres: the {what}: column account is {types['account']}, "
                          "expected text")
    if types["addresses"] not in _ADDRESS_TYPES:
        raise SourceError(f"postgres: the {what}: column addresses is {types['addresses']}, "
                          "expected text, text[], inet or inet[]")
    if types["state"] not in _TEXTISH:
        raise SourceError(f"postgres: the {what}: column state is {types['state']}, "
                          "expected text")


async def fetch_rows(conn: asyncpg.Connection, query: str, *args: Any,
                     what: str, seconds: float | None = None) -> list[Any]:
    """Rows (asyncpg Records, read as mappings) with their fingerprints."""
    try:
        stmt = await conn.prepare(full_query(query), timeout=seconds)
    except asyncpg.PostgresError as exc:
        raise SourceError(f"postgres: the {what} failed: {exc}") from None
    check_columns(stmt, what)
    try:
        rows: list[Any] = await stmt.fetch(*args, timeout=seconds)
    except (asyncpg.DataError, asyncpg.PostgresSyntaxError,
            asyncpg.UndefinedColumnError, asyncpg.UndefinedFunctionError) as exc:
        raise SourceError(f"postgres: the {what} failed: {exc}") from None
    return rows


async def fetch_prints(conn: asyncpg.Connection, query: str,
                       seconds: float | None = None) -> Sequence[Any]:
    try:
        rows: Sequence[Any] = await conn.fetch(prints_query(query), timeout=seconds)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            raise
        raise SourceError(f"postgres: the snapshot query failed: {exc}") from None
    return rows


def parse_payload(payload: str) -> list[str] | None:
    """Account ids of a notification; None means "resync everything"."""
    text = payload.strip()
    if not text:
        return None
    if text.startswith("["):
        import json  # noqa: PLC0415 - rare path

        try:
            data = json.loads(text)
        except ValueError:
            return None
        return [str(x) for x in data if x is not None] if isinstance(data, list) else None
    return [p for p in (x.strip() for x in text.split(",")) if p]


def dsn_hosts(dsn: str) -> str:
    """Host list of a DSN, for the status endpoint."""
    try:
        return urlsplit(dsn).netloc.rsplit("@", 1)[-1] or "local socket"
    except ValueError:
        return "?"


def record_fp(row: Mapping[str, Any]) -> int:
    return int(row[FP])
