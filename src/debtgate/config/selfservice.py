"""Configuration of self-service from the stub page: the ``[selfservice]`` section.

Promised payment (a few days of access on the subscriber's word) and resuming a
voluntary pause. The billing owns the money and has the last word: debtgate checks
what it can know locally (state, debt, tariff), asks the billing's hook, and lets the
normal feed carry the result. See docs/selfservice.md.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from debtgate.config.base import Section
from debtgate.model import State

PROMISE_QUERY = "SELECT ok, reason FROM billing.promise_payment($1::text, $2::int, $3::text)"
RESUME_QUERY = "SELECT ok, reason FROM billing.resume_service($1::text, $2::text)"


class PromiseSection(Section):
    enabled: bool = False
    """Offer a promised payment on the blocked page to eligible subscribers."""
    days: int = Field(5, ge=1, le=60)
    """Days of access a promise gives (sent to the billing, shown on the page)."""
    per_period: int = Field(1, ge=1, le=100)
    """Promises allowed per ``period_days`` (shown on the page; the billing enforces it)."""
    period_days: int = Field(30, ge=1, le=366)
    """The period of ``per_period``, in days (shown on the page; the billing enforces it)."""
    max_debt: Decimal | None = Field(None, ge=0)
    """Largest debt (amount_due) for which a promise is offered; unset means any debt."""
    states: list[Literal["blocked", "warn"]] = ["blocked"]
    """Billing states in which a promise is offered."""
    tariffs: list[str] = []
    """Tariffs (the row's ``tariff``) for which a promise is offered; empty means all."""

    def allows(self, state: State) -> bool:
        return state.value in self.states


class ResumeSection(Section):
    enabled: bool = False
    """Offer "Resume service" on the paused page (the billing's ``resume_service``)."""


class HookSection(Section):
    kind: Literal["sql", "http"] = "sql"
    """How the billing is asked: a SQL function call (``sql``) or a signed webhook (``http``)."""
    dsn: SecretStr | None = None
    """SQL hook: libpq DSN of the billing; unset means the postgres source's DSN. Never logged."""
    dsn_file: Path | None = None
    """SQL hook: file holding the DSN (read at connect); alternative to ``dsn``."""
    promise_query: str = PROMISE_QUERY
    """SQL hook: the promise call, ``$1`` account, ``$2`` days, ``$3`` idempotency key;
    returns one row ``(ok boolean, reason text)``."""
    resume_query: str = RESUME_QUERY
    """SQL hook: the resume call, ``$1`` account, ``$2`` idempotency key; returns
    ``(ok, reason)``."""
    url: str | None = None
    """HTTP hook: the billing's endpoint receiving a JSON POST per request."""
    secret_file: Path | None = None
    """HTTP hook: file holding the HMAC-SHA256 key of ``X-Debtgate-Signature`` (>= 16 bytes)."""
    timeout: float = Field(5.0, gt=0, le=60)
    """Seconds the billing has to answer (connect included); after that the request fails."""
    pool_size: int = Field(2, ge=1, le=20)
    """SQL hook: most connections kept open to the billing."""

    @model_validator(mode="after")
    def _complete(self) -> HookSection:
        if self.kind == "http":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("kind = \"http\" needs url = \"http(s)://...\"")
            if self.secret_file is None:
                raise ValueError("kind = \"http\" needs secret_file")
        if self.dsn is not None and self.dsn_file is not None:
            raise ValueError("set at most one of dsn and dsn_file")
        return self


class LimitsSection(Section):
    per_address: int = Field(5, ge=1)
    """Self-service requests one address may make per ``window`` seconds."""
    per_account: int = Field(5, ge=1)
    """Self-service requests one account may make per ``window`` seconds (all its addresses)."""
    window: float = Field(600.0, gt=0)
    """The rate-limit window, in seconds."""
    remember: float = Field(3600.0, gt=0)
    """Seconds a request id and its answer are remembered (a repeat gets the same answer)."""
    max_remembered: int = Field(10000, ge=100)
    """Most request ids remembered at once (the oldest are forgotten first)."""


class SelfServiceSection(Section):
    """Self-service from the stub page: promised payment and resuming a pause."""

    promise: PromiseSection = PromiseSection()
    """Promised payment: a few days of access on the subscriber's word."""
    resume: ResumeSection = ResumeSection()
    """Resuming a voluntary pause from the paused page."""
    hook: HookSection = HookSection()
    """The billing's hook that decides every request."""
    limits: LimitsSection = LimitsSection()
    """Rate limits and the memory of request ids (idempotency)."""

    @property
    def enabled(self) -> bool:
        return self.promise.enabled or self.resume.enabled
