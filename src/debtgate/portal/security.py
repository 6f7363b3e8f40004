"""CSRF tokens, the per-address rate limiter and the client address behind proxies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from debtgate.errors import ConfigError

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def load_secret(path: Path | None) -> bytes:
    """The CSRF secret from ``path`` (at least 16 bytes), or a fresh random one."""
    if path is None:
        return secrets.token_bytes(32)
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError([f"portal.csrf_secret_file: cannot read {path}: {exc.strerror}"]) from exc
    if len(data) < 16:
        raise ConfigError([f"portal.csrf_secret_file: {path} holds fewer than 16 bytes"])
    return data


class Csrf:
    """Tokens binding a form to the client address and the time it was shown."""

    def __init__(
        self, secret: bytes, max_age: float = 3600, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._max_age = max_age
        self._clock = clock

    def _mac(self, address: str, stamp: str) -> str:
        msg = f"{address}|{stamp}".encode()
        digest = hmac.new(self._secret, msg, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()

    def issue(self, address: str) -> str:
        stamp = format(int(self._clock()), "x")
        return f"{stamp}.{self._mac(address, stamp)}"

    def verify(self, address: str, token: str | None) -> bool:
        fresh = _fresh(token, self._clock(), self._max_age)
        return fresh is not None and hmac.compare_digest(fresh[1], self._mac(address, fresh[0]))


def _fresh(token: str | None, now: float, max_age: float) -> tuple[str, str] | None:
    """(stamp, mac) of a well-formed ``stamp.mac`` token issued at most ``max_age`` ago."""
    if not token or len(token) > 64 or token.count(".") != 1:
        return None
    stamp, mac = token.split(".")
    try:
        issued = int(stamp, 16)
    except ValueError:
        return None
    return (stamp, mac) if -60 <= now - issued <= max_age else None


URL_MAX_AGE = 86400
"""Seconds a signed original URL stays valid (a day: a page may stay open long)."""


class UrlSigner:
    """Signatures of the original URLs the interception itself produced.

    The portal links (``Continue``) and redirects (``POST /ack``) only to a URL carrying
    a valid signature: an HMAC over the URL, the address it was produced for and the
    time, with the CSRF secret (a distinct message prefix keeps the two token kinds
    apart). A URL from anywhere else (a crafted ``?url=`` link) has none and is dropped.
    """

    def __init__(
        self, secret: bytes, max_age: float = URL_MAX_AGE, clock: Callable[[], float] = time.time
    ) -> None:
        self._secret = secret
        self._max_age = max_age
        self._clock = clock

    def _mac(self, address: str, stamp: str, url: str) -> str:
        msg = f"url|{address}|{stamp}|{url}".encode()
        digest = hmac.new(self._secret, msg, hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()

    def sign(self, address: str, url: str) -> str:
        """The signature of ``url`` produced for ``address`` now."""
        stamp = format(int(self._clock()), "x")
        return f"{stamp}.{self._mac(address, stamp, url)}"

    def verify(self, address: str, url: str, sig: str | None) -> bool:
        """True when ``sig`` is a current signature of exactly ``url`` for ``address``."""
        fresh = _fresh(sig, self._clock(), self._max_age)
        return fresh is not None and hmac.compare_digest(fresh[1],
                                                         self._mac(address, fresh[0], url))


class RateLimiter:
    """A token bucket per client address; the table is bounded (least recent dropped)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 50000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Take one token for ``key``; False when its bucket is empty."""
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            # a new client: its bucket is full; the least recent client goes when the
            # table is full
            bucket = buckets[key] = [self._burst, now]
            if len(buckets) > self._max:
                buckets.popitem(last=False)
            tokens = self._burst
        else:
            buckets.move_to_end(key)
            tokens = bucket[0] + (now - bucket[1]) * self._rate
            if tokens > self._burst:
                tokens = self._burst
            bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False

    def retry_after(self, key: str) -> int:
        """Whole seconds until ``key`` has a token again (at least 1)."""
        bucket = self._buckets.get(key)
        tokens = bucket[0] if bucket is not None else self._burst
        return max(1, int((1.0 - tokens) / self._rate + 0.999))

    def __len__(self) -> int:
        return len(self._buckets)


PROBE_MEMORY = 100_000
"""Captive addresses remembered per worker for probe answers (≈ 10 MB at most)."""


class ProbeGate:
    """What OS detection probes cost the daemon: captive verdicts remembered for
    ``ttl`` seconds, and at most ``rate`` view questions a second for probes.

    A probe on a connection the kernel says was DNATed here needs neither (see
    :mod:`.nat`); this gate is for the rest (a proxy in front, a portal on another host
    than the DNAT, a client talking to the portal directly). An intercepted request
    normally arrives by DNAT, that is only from an address the gateway
    sends to the portal (restricted, or warned and not acknowledged), so a remembered
    "captive" is only ever used while it is still true from the network's point of
    view; the answer it gives (the 302 that opens the sign-in sheet) is also the one a
    probe gets when the daemon cannot be asked. A "not captive" verdict is never
    remembered here (the link's own short cache applies).
    """

    def __init__(self, ttl: float, rate: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._last = clock()
        self._clock = clock
        self._captive: dict[str, float] = {}
        self.unasked = 0
        """Probes answered captive because the question budget was spent."""
        self.by_dnat = 0
        """Probes answered captive unasked because the gateway's DNAT brought them."""

    def known_captive(self, ip: str) -> bool:
        until = self._captive.get(ip)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._captive[ip]
        return False

    def remember(self, ip: str) -> None:
        if self._ttl <= 0:
            return
        captive = self._captive
        captive.pop(ip, None)  # re-inserted last: the oldest go first when full
        captive[ip] = self._clock() + self._ttl
        if len(captive) > PROBE_MEMORY:
            del captive[next(iter(captive))]

    def forget(self, ip: str) -> None:
        self._captive.pop(ip, None)

    def may_ask(self) -> bool:
        """Take one question from the per-second budget."""
        now = self._clock()
        tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        self.unasked += 1
        return False


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str | None:
    """The asking address: the peer, or, when the peer is a trusted proxy, the
    right-most address of X-Forwarded-For that is not itself a trusted proxy."""
    addr = _ip(peer) if peer else None
    if addr is None:
        return None

    def is_trusted(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(a in net for net in trusted)

    if not trusted or not is_trusted(addr):
        return str(addr)
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    for hop in reversed(hops):
        hop_addr = _ip(hop)
        if hop_addr is None:
            log.debug("unparsable X-Forwarded-For hop from %s", addr)
            return None
        if not is_trusted(hop_addr):
            return str(hop_addr)
        addr = hop_addr
    return str(addr)
