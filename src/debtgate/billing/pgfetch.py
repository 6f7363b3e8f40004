"""Queries of the PostgreSQL source: codecs, column checks, fingerprints, DSN handling.

Both configured queries are wrapped, so the server also returns a 64-bit
fingerprint of each row (``hashtextextended(row::text, 0)``): a resync then
fetches only ``(account, fingerprint)`` and asks full rows for the accounts
whose fingerprint changed. The COPY fetches (snapshot, restricting rows, large
bursts of changes) are in :mod:`debtgate.billing.pgcopy`.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from itertools import compress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from debtgate.billing.base import NO_MARK, MarkColumn
from debtgate.errors import SourceError

Mapping.register(asyncpg.Record)  # rows are read with .get(): no copy into dicts
FP = "_debtgate_fp"
VERSION = "version"
EXTRA_COLUMNS = ("amount_due", "currency", "since", "block_at", "name", "language", "tariff",
                 "nas", "session_id", "user_name")
_VERSION_TYPES = {"int2", "int4", "int8"}
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


def bare_query(query: str) -> str:
    return query.strip().rstrip(";").strip()


def full_query(query: str, fingerprint: bool = True) -> str:
    """The configured query, with each row's fingerprint as an extra column unless
    the query has a ``version`` column (then that is the row's change mark)."""
    if not fingerprint:
        return f"SELECT q.* FROM ({bare_query(query)}) q"  # noqa: S608
    return f"SELECT q.*, hashtextextended(q::text, 0) AS {FP} FROM ({bare_query(query)}) q"  # noqa: S608


def has_version(types: Mapping[str, str]) -> bool:
    """A ``version`` column of an integer type: the row's change mark (see the docs)."""
    return types.get("version") in _VERSION_TYPES


def mark_expr(types: Mapping[str, str], version: bool | None = None) -> str:
    """The change mark of a row ``q``: its ``version`` if ``version`` (default: if the
    query has such a column; NULL if it has none), else its fingerprint."""
    if version is None:
        version = has_version(types)
    if not version:
        return "hashtextextended(q::text, 0)"
    return "q.version::int8" if has_version(types) else "NULL::int8"


def marks_query(query: str, types: Mapping[str, str]) -> str:
    """Only the account and the change mark of each row."""
    return f"SELECT q.account::text, {mark_expr(types)} FROM ({bare_query(query)}) q"  # noqa: S608


def summary_query(query: str) -> str:
    """Row count and sum of versions: unchanged means nothing changed (version mode)."""
    return (f"SELECT count(*), coalesce(sum(q.version::int8), 0)::text "  # noqa: S608
            f"FROM ({bare_query(query)}) q")


async def describe(conn: asyncpg.Connection, query: str, *, what: str,
                   seconds: float | None = None) -> dict[str, str]:
    """The query's column types (prepared, not run), checked against the contract."""
    try:
        stmt = await conn.prepare(full_query(query, fingerprint=False), timeout=seconds)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            raise
        raise SourceError(f"postgres: the {what} failed: {exc}") from None
    return check_columns(stmt, what)


def prints_query(query: str) -> str:
    """Only the account and the fingerprint of each row of the snapshot query."""
    return f"SELECT q.account::text, hashtextextended(q::text, 0) FROM ({bare_query(query)}) q"  # noqa: S608


async def setup_codecs(conn: asyncpg.Connection) -> None:
    """Numbers and addresses as text: no Decimal or ipaddress object per row; dates
    in COPY output as ISO."""
    await conn.execute("SET DateStyle TO ISO")
    for name in ("numeric", "inet", "cidr"):
        await conn.set_type_codec(name, encoder=str, decoder=str, schema="pg_catalog",
                                  format="text")


def check_columns(stmt: Any, what: str) -> dict[str, str]:
    """A clear error if the query cannot produce contract rows (nothing is applied);
    else the column types by name."""
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
    return types


async def fetch_rows(conn: asyncpg.Connection, query: str, *args: Any,
                     what: str, seconds: float | None = None,
                     fingerprint: bool = True) -> list[Any]:
    """Rows (asyncpg Records, read as mappings), with their fingerprints unless
    ``fingerprint`` is false (the query has a version column)."""
    try:
        stmt = await conn.prepare(full_query(query, fingerprint), timeout=seconds)
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
                       seconds: float | None = None, version: bool = False) -> Sequence[Any]:
    sql = marks_query(query, {"version": "int8"}) if version else prints_query(query)
    try:
        rows: Sequence[Any] = await conn.fetch(sql, timeout=seconds)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            raise
        raise SourceError(f"postgres: the snapshot query failed: {exc}") from None
    return rows


_WHITE = re.compile(r"\s")


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
    ids = text.split(",")
    if "" not in ids and not _WHITE.search(text):  # the common case: one C pass each
        return ids
    return [p for p in (x.strip() for x in ids) if p]


def dsn_hosts(dsn: str) -> str:
    """Host list of a DSN, for the status endpoint."""
    try:
        return urlsplit(dsn).netloc.rsplit("@", 1)[-1] or "local socket"
    except ValueError:
        return "?"


def record_fp(row: Mapping[str, Any]) -> int:
    return int(row[FP])


def row_mark(row: Mapping[str, Any], version: bool) -> int | None:
    value = row.get(VERSION) if version else row.get(FP)
    return int(value) if value is not None else None


_GONE = object()


class Marks:
    """account -> change mark (version or fingerprint), compact at a million rows: the
    snapshot's account texts (shared with the engine) and an ``array`` of 64-bit marks;
    later changes go to a small overlay, merged back when it grows."""

    __slots__ = ("_accounts", "_marks", "_over", "count")

    def __init__(self, accounts: Sequence[str | None], marks: Sequence[int | None]) -> None:
        self._accounts = list(accounts)
        self._marks = (array("q", marks.raw) if isinstance(marks, MarkColumn)
                       else MarkColumn(marks).raw)
        self._over: dict[str, object] = {}
        self.count = len(self._accounts)
        """Accounts held, as of the last :meth:`summary` (a hint for the status)."""

    def set(self, account: str, mark: int | None) -> None:
        self._over[account] = mark
        if len(self._over) > 65536 and len(self._over) * 8 > len(self._accounts):
            self._compact()

    def drop(self, account: str) -> None:
        self._over[account] = _GONE

    def _compact(self) -> None:
        merged = self.as_dict()
        self._accounts = list(merged)
        self._marks = MarkColumn(merged.values()).raw
        self._over = {}

    def as_dict(self) -> dict[str, int | None]:
        out: dict[str, int | None] = dict(zip(
            self._accounts, (None if m == NO_MARK else m for m in self._marks), strict=True))  # type: ignore[arg-type]
        for account, mark in self._over.items():
            if mark is _GONE:
                out.pop(account, None)
            else:
                out[account] = mark  # type: ignore[assignment]
        return out

    def summary(self) -> tuple[int, int]:
        """(accounts, sum of marks, a missing mark counting 0), as the dict would give."""
        over = self._over
        if not over:
            total = sum(filter(NO_MARK.__ne__, self._marks))
            self.count = len(self._accounts)
            return self.count, total
        hidden = list(compress(range(len(self._accounts)),
                               map(over.__contains__, self._accounts)))
        total = sum(filter(NO_MARK.__ne__, self._marks)) - sum(
            m for m in (self._marks[i] for i in hidden) if m != NO_MARK)
        kept = [m for m in over.values() if m is not _GONE]
        total += sum(m for m in kept if m is not None)  # type: ignore[misc]
        self.count = len(self._accounts) - len(hidden) + len(kept)
        return self.count, total



