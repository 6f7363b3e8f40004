"""The subscriber view: what the portal may show about the holder of one address.

One msgspec type on both sides of the portal's Unix socket: the daemon builds a
:class:`SubscriberView` (:func:`view_of`) and encodes it (``GET /v1/view``); the portal
decodes the same type (:func:`decode_view`), so a field added here is on the wire and in
the page at once, and a malformed answer is a :class:`msgspec.ValidationError` naming the
field, never a half-read view.

The view carries only what the subscriber behind the address may see: never another
account's data (the daemon resolves the address to its one owner first).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import msgspec

from debtgate.model import State, Subscriber


class PromiseOffer(msgspec.Struct, frozen=True, kw_only=True):
    """The promised-payment offer and its conditions, as the daemon's policy says."""

    eligible: bool
    reason: str | None = None
    """Why not (``disabled``, ``state``, ``no_debt``, ``debt``, ``tariff``, ``limit``)."""
    days: int = 0
    """Days of access a promise gives."""
    per_period: int = 0
    """Promises allowed per ``period_days``."""
    period_days: int = 0
    max_debt: Decimal | None = None
    """The largest debt a promise may cover (None: any)."""
    currency: str = ""
    states: tuple[str, ...] = ()
    """The states a promise is offered in."""
    tariffs: tuple[str, ...] = ()
    """The tariffs a promise is offered on (empty: all)."""


class SubscriberView(msgspec.Struct, frozen=True, kw_only=True):
    """What the portal may show to the subscriber behind one address."""

    address: str
    account: str
    state: State
    """The enforced state (an override or a held sync included), not only billing's."""
    amount_due: Decimal = Decimal(0)
    currency: str = ""
    since: date | None = None
    block_at: date | None = None
    name: str = ""
    language: str = ""
    acknowledged: bool = False
    """A warn-state subscriber acknowledged the notice (web passes until it expires)."""
    ack_timeout: int = 0
    promise: PromiseOffer | None = None
    """The promised-payment offer (None when self-service is off)."""
    can_resume: bool = False
    """True when the subscriber may resume a voluntary pause from the page."""

    def __post_init__(self) -> None:
        if not self.amount_due.is_finite():
            raise ValueError("amount_due is not finite")

    @property
    def captive(self) -> bool:
        """True when web requests of this address are sent to the portal."""
        return self.state.restricted or (self.state is State.WARN and not self.acknowledged)


def _day(value: date | None) -> date | None:
    return value.date() if isinstance(value, datetime) else value


def view_of(sub: Subscriber, address: str, *, state: State | None = None,
            acknowledged: bool = False, ack_timeout: int = 0, default_currency: str = "",
            promise: PromiseOffer | None = None, can_resume: bool = False) -> SubscriberView:
    """The view of ``sub`` as seen from ``address`` (``state``: the enforced one)."""
    return SubscriberView(
        address=address, account=sub.account, state=sub.state if state is None else state,
        amount_due=sub.amount_due, currency=sub.currency or default_currency,
        since=_day(sub.since), block_at=_day(sub.block_at), name=sub.name,
        language=sub.language, acknowledged=acknowledged, ack_timeout=ack_timeout,
        promise=promise, can_resume=can_resume)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(SubscriberView)


def encode_view(view: SubscriberView) -> bytes:
    """The JSON of ``GET /v1/view``."""
    return _ENCODER.encode(view)


def decode_view(data: bytes) -> SubscriberView:
    """The view from the JSON of ``GET /v1/view``; :class:`msgspec.ValidationError` (a
    ``ValueError``) when malformed, naming the field."""
    return _DECODER.decode(data)
