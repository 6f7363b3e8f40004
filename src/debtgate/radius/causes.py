"""What to do with a reply (or its absence): the Error-Cause policy of RFC 5176."""

from __future__ import annotations

import enum

from debtgate.radius.packets import Reply

SESSION_GONE = 503
RESOURCES_UNAVAILABLE = 506
RECIPE_ERRORS = frozenset({401, 402, 404, 405, 407})
"""The request itself is wrong for this NAS (attribute, value, service): fix the profile."""
CAUSE_NAMES = {
    201: "Residual-Context-Removed",
    202: "Invalid-EAP-Packet",
    401: "Unsupported-Attribute",
    402: "Missing-Attribute",
    403: "NAS-Identification-Mismatch",
    404: "Invalid-Request",
    405: "Unsupported-Service",
    406: "Unsupported-Extension",
    407: "Invalid-Attribute-Value",
    501: "Administratively-Prohibited",
    502: "Proxy-Request-Not-Routable",
    503: "Session-Context-Not-Found",
    504: "Session-Context-Not-Removable",
    505: "Proxy-Processing-Error",
    506: "Resources-Unavailable",
    507: "Request-Initiated",
    508: "Multiple-Session-Selection-Unsupported",
}


class Decision(enum.StrEnum):
    """The outcome class of one attempt."""

    ACKED = "acked"
    """The NAS answered ACK (not proof on its own: see ``verified``)."""
    GONE = "session_gone"
    """503: the session no longer exists; recorded, never retried."""
    BACKOFF = "backoff"
    """506: the NAS is overloaded; pause the NAS, then try again."""
    RECIPE = "recipe_error"
    """401/402/404/405/407: the profile is wrong; alarm, no retry (fallback may apply)."""
    RETRY = "retry"
    """Any other NAK: retry with backoff."""
    TIMEOUT = "timeout"
    """No valid reply after all retransmissions."""


def decide(reply: Reply | None) -> Decision:
    """Classify one attempt's reply."""
    if reply is None:
        return Decision.TIMEOUT
    if reply.ack:
        return Decision.ACKED
    cause = reply.error_cause
    if cause == SESSION_GONE:
        return Decision.GONE
    if cause == RESOURCES_UNAVAILABLE:
        return Decision.BACKOFF
    if cause in RECIPE_ERRORS:
        return Decision.RECIPE
    return Decision.RETRY


def cause_label(cause: int | None) -> str:
    """A metric label for an Error-Cause (``none`` when the NAK had none)."""
    if cause is None:
        return "none"
    return f"{cause}-{CAUSE_NAMES.get(cause, 'Unknown')}"


def backoff_delay(base: float, attempt: int, cap: float = 60.0) -> float:
    """Delay before attempt ``attempt`` (1-based retry count): base * 2**(attempt-1)."""
    return float(min(cap, base * 2.0 ** max(0, attempt - 1)))
