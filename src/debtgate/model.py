"""The subscriber contract every billing source fills.

A billing source (file, PostgreSQL, ...) produces *rows*: mappings with the
columns below. :mod:`debtgate.billing.validate` turns each row into a
:class:`Subscriber` or a :class:`Rejection` with a reason.

=============  ===========  ===================================================
column         required     meaning
=============  ===========  ===================================================
account        yes          billing account id (text, unique)
addresses      yes          IPv4/IPv6 hosts and prefixes: a list, or one text
                            with addresses separated by commas or spaces
state          yes          active | warn | blocked | paused | disabled
amount_due     no (0)       debt, a decimal number (text or number)
currency       no           ISO 4217 code, e.g. RUB; default from config
since          no           ISO date (or datetime) the debt/state started
block_at       no           for warn: ISO date the block is planned for
name           no           display name shown on the stub page
language       no           ru | en | ... (portal language)
tariff         no           tariff/plan name (promised-payment policy)
nas            no           NAS name (from config) or address, for RADIUS
session_id     no           Acct-Session-Id of the current session
user_name      no           RADIUS User-Name of the current session
=============  ===========  ===================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import msgspec


class State(enum.StrEnum):
    """A subscriber's billing state."""

    ACTIVE = "active"
    """Paid up: no restriction."""
    WARN = "warn"
    """Notice before the block: web requests see a notice until acknowledged."""
    BLOCKED = "blocked"
    """Debt: web goes to the stub page, everything else is refused."""
    PAUSED = "paused"
    """Voluntary pause (holiday): restricted like blocked, page explains how to resume."""
    DISABLED = "disabled"
    """Administrative: restricted, page says whom to call."""

    @property
    def restricted(self) -> bool:
        return self in (State.BLOCKED, State.PAUSED, State.DISABLED)


class Session(msgspec.Struct, frozen=True, gc=False):
    """RADIUS session facts for CoA/Disconnect (all optional)."""

    nas: str | None = None
    session_id: str | None = None
    user_name: str | None = None
    framed_ip: str | None = None


class Subscriber(msgspec.Struct, frozen=True, gc=False):
    """One billing account as this gateway sees it.

    A frozen ``msgspec.Struct``: built in about a twentieth of a frozen dataclass's time
    (a million of them at a cold sync) and not tracked by the cyclic garbage collector
    (it holds no cycles).

    ``addresses`` hold normalised text: ``10.0.0.5`` (host), ``10.0.1.0/24``
    (prefix), ``2001:db8::5``, ``2001:db8:1::/56``. Hosts never carry a /32 or
    /128 suffix.
    """

    account: str
    addresses: tuple[str, ...]
    state: State
    amount_due: Decimal = Decimal(0)
    currency: str = ""
    since: date | None = None
    block_at: date | None = None
    name: str = ""
    language: str = ""
    tariff: str = ""
    session: Session | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A billing row that was not applied, and why."""

    account: str | None
    reason: str
    """A short machine-friendly reason (used as a metric label)."""
    detail: str
    """A human explanation naming the offending value."""
