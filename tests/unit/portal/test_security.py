"""CSRF tokens, the token-bucket limiter, the client address."""

from __future__ import annotations

import ipaddress

import pytest

from debtgate.errors import ConfigError
from debtgate.portal.security import Csrf, RateLimiter, client_address, load_secret


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_csrf_round_trip_and_binding():
    clock = Clock()
    csrf = Csrf(b"k" * 32, max_age=3600, clock=clock)
    token = csrf.issue("10.0.0.1")
    assert csrf.verify("10.0.0.1", token)
    assert not csrf.verify("10.0.0.2", token)
    assert not Csrf(b"x" * 32, clock=clock).verify("10.0.0.1", token)
    clock.now += 3599
    assert csrf.verify("10.0.0.1", token)
    clock.now += 2
    assert not csrf.verify("10.0.0.1", token)


@pytest.mark.parametrize("bad", [None, "", ".", "a.b.c", "zz.AAAA", "x" * 100, "f4240."])
def test_csrf_rejects_garbage(bad):
    assert not Csrf(b"k" * 32, clock=Clock()).verify("10.0.0.1", bad)


def test_csrf_rejects_tampered_timestamp():
    clock = Clock()
    csrf = Csrf(b"k" * 32, clock=clock)
    stamp, mac = csrf.issue("10.0.0.1").split(".")
    forged = format(int(stamp, 16) + 100, "x") + "." + mac
    assert not csrf.verify("10.0.0.1", forged)


def test_token_bucket_with_injected_clock():
    clock = Clock(0.0)
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("a") == 1
    assert limiter.allow("b")  # buckets are per key
    clock.now = 0.5  # one token back at 2/s
    assert limiter.allow("a") and not limiter.allow("a")
    clock.now = 100.0  # refill is capped at the burst
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_limiter_table_is_bounded():
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=100, clock=Clock(0.0))
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100


TRUSTED = [ipaddress.ip_network("10.9.0.0/24"), ipaddress.ip_network("fd00::/64")]


@pytest.mark.parametrize(
    ("peer", "xff", "who"),
    [
        ("100.64.0.5", [], "100.64.0.5"),
        ("100.64.0.5", ["1.2.3.4"], "100.64.0.5"),  # untrusted peer: header ignored
        ("10.9.0.1", ["1.2.3.4"], "1.2.3.4"),
        ("10.9.0.1", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),  # client-supplied hops ignored
        ("10.9.0.1", ["1.2.3.4, 10.9.0.2"], "1.2.3.4"),  # chain of trusted proxies
        ("10.9.0.1", ["1.2.3.4", "5.6.7.8"], "5.6.7.8"),
        ("10.9.0.1", ["garbage"], None),
        ("10.9.0.1", [], "10.9.0.1"),
        ("fd00::1", ["2001:db8::5"], "2001:db8::5"),
        ("::ffff:100.64.0.5", [], "100.64.0.5"),
        (None, [], None),
    ],
)
def test_client_address(peer, xff, who):
    assert client_address(peer, xff, TRUSTED) == who


def test_load_secret(tmp_path):
    assert len(load_secret(None)) == 32
    assert load_secret(None) != load_secret(None)
    good = tmp_path / "s"
    good.write_bytes(b"0123456789abcdef0123\n")
    assert load_secret(good) == b"0123456789abcdef0123"
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(ConfigError):
        load_secret(short)
    with pytest.raises(ConfigError):
        load_secret(tmp_path / "missing")


def test_probe_gate_remembers_captive_and_forgets():
    from debtgate.portal.security import ProbeGate

    clock = Clock(0.0)
    gate = ProbeGate(ttl=60.0, rate=2.0, clock=clock)
    assert not gate.known_captive("10.0.0.1")
    gate.remember("10.0.0.1")
    assert gate.known_captive("10.0.0.1") and not gate.known_captive("10.0.0.2")
    clock.now = 59.0
    assert gate.known_captive("10.0.0.1")
    clock.now = 60.0
    assert not gate.known_captive("10.0.0.1")  # expired
    gate.remember("10.0.0.1")
    gate.forget("10.0.0.1")
    assert not gate.known_captive("10.0.0.1")
    off = ProbeGate(ttl=0.0, rate=1.0, clock=clock)
    off.remember("10.0.0.1")
    assert not off.known_captive("10.0.0.1")


def test_probe_gate_question_budget():
    from debtgate.portal.security import ProbeGate

    clock = Clock(0.0)
    gate = ProbeGate(ttl=60.0, rate=2.0, clock=clock)
    assert [gate.may_ask() for _ in range(3)] == [True, True, False]
    assert gate.unasked == 1
    clock.now = 0.5  # one question back at 2/s
    assert gate.may_ask() and not gate.may_ask()
