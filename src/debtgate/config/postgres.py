"""The PostgreSQL source's settings (``[source.postgres]``), apart from the source, so
that the source's parts (:mod:`.postgres`, :mod:`.pgsync`) both import it from below."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from debtgate.config.base import Section

log = logging.getLogger(__name__)


class PostgresSourceSection(Section):
    dsn: SecretStr | None = None
    """libpq-style DSN, e.g. ``postgresql://debtgate@db1:5432,db2:5432/billing?target_session_attrs=any``
    (several hosts: tried in order). Never logged; prefer ``dsn_file``."""
    dsn_file: Path | None = None
    """File holding the DSN (mode 0600), read at every connect."""
    snapshot_query: str = "SELECT * FROM debtgate_subscribers"
    """Returns every subscriber as contract rows (account, addresses, state, ...)."""
    accounts_query: str = "SELECT * FROM debtgate_subscribers WHERE account = ANY($1::text[])"
    """Returns the rows of the accounts in ``$1::text[]`` (missing ones are gone)."""
    channel: str = Field("debtgate", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    """The LISTEN channel the billing's triggers NOTIFY with account ids."""
    coalesce_ms: int = Field(20, ge=0, le=5000)
    """Notifications within this many milliseconds are applied as one change."""
    # Adaptive (debtgate.billing.coalesce): on an idle feed a notification is applied
    # after a tenth of this (1 ms at least) without another one; under load, ids are
    # gathered for the whole window.
    heartbeat_interval: float = Field(5.0, gt=0, le=300)
    """Seconds between ``SELECT 1`` probes that notice a dead server."""
    reconnect_min: float = Field(0.5, gt=0)
    """First delay (seconds) before reconnecting; doubled on each failure."""
    reconnect_max: float = Field(30.0, gt=0)
    """Longest delay (seconds) between reconnect attempts."""
    resync_interval: float = Field(300.0, gt=0)
    """Seconds between resyncs (the safety net for lost notifications). With a
    ``version`` column a resync first compares the row count and the sum of
    versions: unchanged means nothing to do."""
    full_resync_interval: float = Field(3600.0, gt=0)
    """Seconds between complete snapshots when the query has a ``version`` column
    (the safety net for a change that did not bump the version)."""
    connect_timeout: float = Field(5.0, gt=0)
    """Seconds allowed to connect, and for a heartbeat to answer."""
    query_timeout: float = Field(300.0, gt=0)
    """Seconds allowed for one snapshot or accounts query."""
    lane: bool = True
    """Open a second connection for small changes (a payment), so that they are read
    at once while the main one fetches a snapshot or a large change. ``false``: one
    connection (for a pooler or a server short of connections); a payment then waits
    for the bulk fetch in progress."""

    restrictions_first: bool = True
    """On a first start (the kernel enforces nothing, no state restored), fetch the rows
    whose state is not ``active`` (the snapshot query with ``WHERE state <> 'active'``)
    and apply them before the whole snapshot: every restriction is enforced in seconds
    at a million subscribers, not after the whole snapshot. ``false``: the snapshot
    alone (for a view whose ``state`` is expensive to compute twice)."""
    storm_helper: bool | None = None
    """Deprecated, ignored (small changes have their own connection: ``lane``)."""

    @model_validator(mode="after")
    def _deprecated(self) -> PostgresSourceSection:
        for key in ("storm_helper",):
            if getattr(self, key) is not None:
                log.warning("[source.postgres] %s is deprecated and ignored; remove it", key)
        return self

    @model_validator(mode="after")
    def _one_dsn(self) -> PostgresSourceSection:
        if (self.dsn is None) == (self.dsn_file is None):
            raise ValueError("set exactly one of dsn and dsn_file")
        return self
