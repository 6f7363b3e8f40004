"""The ``[radius]`` config section: NAS inventory, accounting listener, profiles.

Secrets never live in the TOML: each NAS names a ``secret_file`` that is read
when the dispatcher starts (:func:`read_secret`); its content is never logged.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from debtgate.config.base import Section
from debtgate.errors import RadiusError


def read_secret(path: Path) -> bytes:
    """Read a shared secret (first line, surrounding whitespace stripped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RadiusError(f"cannot read secret file {path}: {exc.strerror}") from exc
    secret = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise RadiusError(f"secret file {path} is empty")
    return secret.encode()


class NasConfig(Section):
    """One NAS (BRAS, router) that receives CoA-Request / Disconnect-Request."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """Name used in the billing ``nas`` column, logs and metrics labels."""
    address: str
    """IP address the dynamic-authorization requests are sent to."""
    port: int = Field(default=3799, ge=1, le=65535)
    """UDP port of the NAS's CoA server (RFC 5176: 3799; MikroTik/Cisco ISG often 1700)."""
    secret_file: Path
    """File holding the shared secret (first line); never logged."""
    profile: str
    """Vendor profile name: a shipped one (mikrotik, cisco-isg, ...) or one in profiles_dir."""
    vars: dict[str, str] = Field(default_factory=dict)
    """Profile variables overriding the profile's [vars] (e.g. redirect_service)."""
    nas_ip: str | None = None
    """NAS-IP-Address sent for identification; defaults to ``address`` if it is IPv4."""
    nas_identifier: str | None = None
    """NAS-Identifier sent for identification (when the NAS identifies itself by name)."""
    identify_nas: Literal["ip", "identifier", "both", "none"] = "ip"
    """Which NAS identification attributes requests carry."""
    source_address: str | None = None
    """Local address to send from (default: chosen by the kernel)."""
    rate: float = Field(default=50.0, gt=0)
    """Requests per second allowed towards this NAS (token bucket refill rate)."""
    burst: int = Field(default=20, ge=1)
    """Token bucket size: requests that may be sent back to back."""
    max_in_flight: int = Field(default=64, ge=1, le=65536)
    """Requests awaiting a reply at once; above 256 more sockets are used."""
    timeout: float = Field(default=3.0, gt=0)
    """Seconds to wait for a reply before retransmitting (same identifier/authenticator)."""
    retries: int = Field(default=3, ge=0, le=20)
    """Retransmissions after a timeout, and new attempts after a retryable NAK."""
    backoff: float = Field(default=1.0, ge=0)
    """Base delay in seconds before a new attempt after a NAK; doubles per attempt (max 60)."""
    queue_limit: int = Field(default=250_000, ge=1)
    """Pending sessions queued for this NAS (one entry per session, later intents coalesce)."""
    degraded_after: float = Field(default=60.0, gt=0)
    """Seconds without a verified reply to requests sent (never answered, or silent since
    the last answer) after which the NAS shows as degraded (``radius:<name>`` in the
    status's ``degraded``, ``debtgate_degraded``); it recovers with the next reply."""
    blind_ack: bool = False
    """The NAS ACKs CoAs it did not apply (accel-ppp): results are marked unverified."""

    @field_validator("address", "nas_ip", "source_address")
    @classmethod
    def _ip(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)
        return value

    @property
    def nas_ip_effective(self) -> str | None:
        """The NAS-IP-Address to send, if any."""
        if self.nas_ip:
            return self.nas_ip
        return self.address if ":" not in self.address else None


class AccountingConfig(Section):
    """Optional RADIUS accounting listener that learns sessions from the NAS."""

    address: str = "127.0.0.1"
    """Address the listener binds to."""
    port: int = Field(default=1813, ge=1, le=65535)
    """UDP port of the listener."""
    secret_file: Path
    """File holding the accounting shared secret (first line); never logged."""
    clients: list[str] = Field(default_factory=list)
    """Addresses or prefixes allowed to send accounting; empty means the NAS addresses."""
    account_attribute: str | None = None
    """Attribute carrying the billing account (e.g. Class); enables lookup by account."""
    max_sessions: int = Field(default=500_000, ge=1)
    """Sessions kept in memory; the least recently updated are dropped beyond this."""

    @field_validator("clients")
    @classmethod
    def _nets(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value


class RadiusConfig(Section):
    """RADIUS CoA / Disconnect towards BRASes (``[radius]``)."""

    enabled: bool = False
    """Send CoA / Disconnect requests on account transitions."""
    nas: list[NasConfig] = Field(default_factory=list)
    """The NAS inventory."""
    accounting: AccountingConfig | None = None
    """Accounting listener; omit when the billing provides session facts."""
    profiles_dir: Path | None = None
    """Directory with operator profiles (``<name>.toml``); they override shipped ones."""
    dictionaries: list[Path] = Field(default_factory=list)
    """Extra FreeRADIUS-format dictionary files for operator profiles."""
    results_limit: int = Field(default=1_000_000, ge=1)
    """Per-account last results kept for the status endpoint."""

    @model_validator(mode="after")
    def _unique(self) -> RadiusConfig:
        names = [n.name for n in self.nas]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate NAS names: {', '.join(dupes)}")
        if self.enabled and not self.nas:
            raise ValueError("radius is enabled but no [[radius.nas]] is configured")
        return self
