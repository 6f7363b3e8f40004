"""What the daemon asks for: bring one subscriber's session to a billing state."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from debtgate.model import Session, State


@dataclass(frozen=True, slots=True)
class Intent:
    """An account transition to push to the NAS.

    ``session`` holds what the billing knows (any field may be None); missing
    facts are looked up in the accounting session table when the request is
    built. ``addresses`` are the subscriber's addresses (normalised text).
    """

    account: str
    target: State
    session: Session = field(default_factory=Session)
    addresses: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """restrict (blocked/paused/disabled), warn, or restore (active)."""
        if self.target.restricted:
            return "restrict"
        if self.target is State.WARN:
            return "warn"
        return "restore"

    @property
    def host_ipv4(self) -> str | None:
        """The first IPv4 host address, a last-resort Framed-IP-Address."""
        for address in self.addresses:
            if "/" in address:
                continue
            try:
                if ipaddress.ip_address(address).version == 4:
                    return address
            except ValueError:
                continue
        return None
