"""The hot-path codec (pre-encoded requests, direct reply verification) against pyrad."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pyrad import packet as rp

from debtgate.config.radius import NasConfig
from debtgate.radius.hotpath import CompiledAction, verify_reply
from debtgate.radius.packets import (
    Facts,
    Reply,
    encode,
    load_dictionary,
    request_attributes,
)
from debtgate.radius.profiles import ProfileError, load_profiles

D = load_dictionary()
PROFILES = load_profiles(D)
NAS = NasConfig(name="b", address="192.0.2.1", secret_file=Path("/x"), profile="x",
                identify_nas="both", nas_identifier="bras-1")
CASES = [(name, intent, kind)
         for name, profile in sorted(PROFILES.items())
         for intent in ("restrict", "warn", "restore")
         if (action := profile.action(intent)).kind != "none"
         for kind in [action.kind, *(["disconnect"] if action.fallback_disconnect else [])]]


@pytest.mark.parametrize(("name", "intent", "kind"), CASES)
@pytest.mark.parametrize("facts", [Facts("A1", "s1", "bob", "10.0.0.1"),
                                   Facts("A1", None, "bob", None),
                                   Facts("A1", None, None, "10.0.0.2")])
def test_compiled_request_is_byte_identical_to_pyrad(name: str, intent: str, kind: str,
                                                     facts: Facts) -> None:
    profile = PROFILES[name]
    action = profile.action(intent)
    compiled = CompiledAction(NAS, profile, action, kind, D, b"k")
    try:
        reference = encode(D, b"k", kind, request_attributes(NAS, profile, action, facts, D,
                                                             kind), 77, now=1_700_000_000)
    except ProfileError:
        with pytest.raises(ProfileError):
            compiled.body(facts)
        return
    raw, auth = compiled.finish(compiled.body(facts), 77, now=1_700_000_000)
    assert raw == reference[1] and auth == reference[0].authenticator


def test_long_session_id_is_a_profile_error_not_a_crash() -> None:
    profile = PROFILES["mikrotik"]
    compiled = CompiledAction(NAS, profile, profile.action("restrict"), "coa", D, b"k")
    with pytest.raises(ProfileError, match="253"):
        compiled.body(Facts("A", "x" * 254))
    with pytest.raises(ProfileError, match="ipaddr"):
        CompiledAction(NAS, PROFILES["cisco-isg"], PROFILES["cisco-isg"].action("restrict"),
                       "coa", D, b"k").body(Facts("A", framed_ip="10.0.0"))


def _request() -> tuple[rp.CoAPacket, bytes]:
    return encode(D, b"k", "coa", [("Acct-Session-Id", "s1")], 9, now=1_700_000_000)


def test_verify_reply_checks_like_pyrad() -> None:
    req, _ = _request()
    codes = (rp.CoAACK, rp.CoANAK)

    def reply(code: int = rp.CoAACK, secret: bytes = b"k", ma: bool = True, **attrs) -> bytes:
        r = req.CreateReply()
        r.code, r.secret, r.message_authenticator = code, secret, ma or None
        for k, v in attrs.items():
            r[k.replace("_", "-")] = v
        return r.ReplyPacket()

    ack = reply()
    assert verify_reply(ack, 9, codes, req.authenticator, b"k") == Reply(rp.CoAACK, None, "")
    assert verify_reply(reply(ma=False), 9, codes, req.authenticator, b"k") is not None
    assert verify_reply(ack, 10, codes, req.authenticator, b"k") is None  # identifier
    assert verify_reply(reply(secret=b"x"), 9, codes, req.authenticator, b"k") is None
    assert verify_reply(reply(rp.DisconnectACK), 9, codes, req.authenticator, b"k") is None
    assert verify_reply(ack[:-1], 9, codes, req.authenticator, b"k") is None  # truncated
    nak = reply(rp.CoANAK, Error_Cause=503, Reply_Message="no such session")
    assert verify_reply(nak, 9, codes, req.authenticator, b"k", D) == Reply(
        rp.CoANAK, 503, "no such session")
    # a forged Message-Authenticator with a valid Response Authenticator is refused
    pos = ack.index(bytes((80, 18)), 20)
    forged = bytearray(ack)
    forged[pos + 2] ^= 1
    body = bytes(forged[20:])
    forged[4:20] = hashlib.md5(bytes(forged[:4]) + req.authenticator + body + b"k").digest()
    assert verify_reply(bytes(forged), 9, codes, req.authenticator, b"k") is None
    # padding after Length is ignored (RFC 2865 section 3)
    assert verify_reply(ack + b"\0\0", 9, codes, req.authenticator, b"k") is not None
