"""Building CoA-Request / Disconnect-Request packets and reading replies: the reference
codec, pyrad's public API (the worker's pre-encoded form is :mod:`debtgate.radius.hotpath`,
checked byte for byte against this one)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from debtgate.config.radius import NasConfig
from debtgate.radius.profiles import (
    IDENTIFIERS,
    Action,
    Profile,
    ProfileError,
    attribute_type,
    convert,
    fill,
)

DICTIONARY_FILE = Path(__file__).parent / "dictionaries" / "dictionary"
CODE_NAMES = {
    rp.CoARequest: "CoA-Request",
    rp.DisconnectRequest: "Disconnect-Request",
    rp.CoAACK: "CoA-ACK",
    rp.CoANAK: "CoA-NAK",
    rp.DisconnectACK: "Disconnect-ACK",
    rp.DisconnectNAK: "Disconnect-NAK",
}
ACKS = (rp.CoAACK, rp.DisconnectACK)
NAKS = (rp.CoANAK, rp.DisconnectNAK)


def load_dictionary(extra: list[Path] | None = None) -> Dictionary:
    """The shipped dictionaries plus operator files."""
    return Dictionary(str(DICTIONARY_FILE), *[str(p) for p in extra or []])


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known about one subscriber's session when a request is built."""

    account: str
    session_id: str | None = None
    user_name: str | None = None
    framed_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A verified reply."""

    code: int
    error_cause: int | None
    detail: str

    @property
    def ack(self) -> bool:
        return self.code in ACKS


def template_values(nas: NasConfig, profile: Profile, facts: Facts) -> dict[str, str | None]:
    """Values templates may use: profile vars (NAS overrides) and subscriber fields."""
    values: dict[str, str | None] = {**profile.vars, **nas.vars}
    values.update(
        account=facts.account,
        session_id=facts.session_id,
        user_name=facts.user_name,
        framed_ip=facts.framed_ip,
        nas_ip=nas.nas_ip_effective,
        nas_identifier=nas.nas_identifier,
    )
    return values


def identification(nas: NasConfig, profile: Profile, facts: Facts) -> list[tuple[str, Any]]:
    """NAS identification plus the session identifier(s) the profile prefers."""
    attrs: list[tuple[str, Any]] = []
    if nas.identify_nas in ("ip", "both") and nas.nas_ip_effective:
        attrs.append(("NAS-IP-Address", nas.nas_ip_effective))
    if nas.identify_nas in ("identifier", "both") and nas.nas_identifier:
        attrs.append(("NAS-Identifier", nas.nas_identifier))
    found = False
    for key in profile.identify:
        value = getattr(facts, key)
        if value:
            attrs.append((IDENTIFIERS[key], value))
            found = True
            if not profile.identify_all:
                break
    if not found:
        raise ProfileError(f"no session identifier known (profile wants {list(profile.identify)})")
    return attrs


def request_attributes(
    nas: NasConfig, profile: Profile, action: Action, facts: Facts, dictionary: Dictionary,
    kind: str,
) -> list[tuple[str, Any]]:
    """All attributes of a request of ``kind`` (coa or disconnect) for ``action``."""
    attrs = identification(nas, profile, facts)
    if kind == "coa":
        values = template_values(nas, profile, facts)
        for name, template in action.attributes:
            attrs.append((name, convert(attribute_type(dictionary, name), fill(template, values))))
    return attrs


def encode(
    dictionary: Dictionary, secret: bytes, kind: str, attrs: list[tuple[str, Any]], pkt_id: int,
    now: float | None = None,
) -> tuple[rp.CoAPacket, bytes]:
    """Encode with Message-Authenticator (first attribute) and Event-Timestamp.

    pyrad's public API does it all: ``add_message_authenticator`` (RFC 3579 3.2 /
    RFC 5176 3.3: HMAC-MD5 with a zero Request Authenticator) and ``RequestPacket``
    (the Request Authenticator). The returned packet verifies replies (``VerifyReply``)
    like any pyrad request.
    """
    code = rp.CoARequest if kind == "coa" else rp.DisconnectRequest
    pkt = rp.CoAPacket(code=code, id=pkt_id, secret=secret, dict=dictionary)
    pkt.add_message_authenticator()
    for name, value in attrs:
        pkt.AddAttribute(name, value)
    pkt.AddAttribute("Event-Timestamp", int(time.time() if now is None else now))
    return pkt, pkt.RequestPacket()


def decode_reply(request: rp.CoAPacket, data: bytes) -> Reply | None:
    """Decode and verify a reply (identifier, response authenticator, MA); None if bad."""
    if len(data) < 20 or data[1] != request.id:
        return None
    expected = ACKS + NAKS
    if data[0] not in expected or (data[0] in (rp.CoAACK, rp.CoANAK)) != (
        request.code == rp.CoARequest
    ):
        return None
    try:
        reply = request.CreateReply(packet=data)
    except Exception:  # noqa: BLE001 - any decode failure is a bad reply
        return None
    if not request.VerifyReply(reply, data):
        return None
    raw_cause = OrderedDict.get(reply, 101)
    cause = int.from_bytes(raw_cause[0][:4], "big") if raw_cause else None
    detail = (first_value(reply, "ERX-Action-Reason") or first_value(reply, "Reply-Message")
              or "")
    return Reply(code=reply.code, error_cause=cause, detail=str(detail))


def first_value(reply: Mapping[Any, Any], name: str) -> Any:
    """The first value of attribute ``name`` in a decoded packet, or None."""
    try:
        values = reply[name]
    except KeyError:
        return None
    return values[0] if values else None
