"""Per-NAS counters: sent, ACK, NAK by cause, timeouts, latency, rate."""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter, deque
from typing import Any

from debtgate.radius.pacing import Clock

# latency histogram bounds: 0.1 ms .. ~100 s, 12.5 % apart (bounded memory)
_BOUNDS = [1e-4 * 1.125**i for i in range(int(math.log(1e6) / math.log(1.125)) + 1)]


class LatencyHistogram:
    """Log-bucket histogram: mean exact, quantiles within one bucket (12.5 %)."""

    def __init__(self) -> None:
        self.counts = [0] * (len(_BOUNDS) + 1)
        self.total = 0
        self.sum = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(_BOUNDS, seconds)] += 1
        self.total += 1
        self.sum += seconds

    @property
    def mean(self) -> float | None:
        return self.sum / self.total if self.total else None

    def quantile(self, q: float) -> float | None:
        if not self.total:
            return None
        need = q * self.total
        seen = 0
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= need:
                return _BOUNDS[min(i, len(_BOUNDS) - 1)]
        return _BOUNDS[-1]


class RateMeter:
    """Events per second over the last ``window`` seconds (1 s buckets)."""

    def __init__(self, window: int = 10, clock: Clock = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._buckets: deque[list[float]] = deque()

    def add(self, n: int = 1) -> None:
        second = math.floor(self._clock())
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([second, n])
        self._trim(second)

    def _trim(self, second: float) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.window:
            self._buckets.popleft()

    def rate(self) -> float:
        now = self._clock()
        self._trim(math.floor(now))
        if not self._buckets:
            return 0.0
        span = max(1.0, now - self._buckets[0][0])
        return sum(b[1] for b in self._buckets) / span


class NasStats:
    """Counters of one NAS, exported by :meth:`CoaDispatcher.status`."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.sent = 0
        """Requests sent (first transmissions)."""
        self.retransmits = 0
        self.ack = 0
        self.nak: Counter[str] = Counter()
        self.timeouts = 0
        self.session_gone = 0
        self.recipe_errors = 0
        """Alarm counter: NAKs saying the profile is wrong for this NAS."""
        self.fallbacks = 0
        self.unresolved = 0
        """Intents without a usable session identifier (nothing sent)."""
        self.dropped = 0
        """Intents refused because the queue was full."""
        self.bad_reply = 0
        """Replies failing identifier/authenticator/Message-Authenticator checks."""
        self.bad_source = 0
        """Datagrams from another address/port than the NAS's."""
        self.unexpected = 0
        """Replies to no outstanding request (late duplicates)."""
        self.latency = LatencyHistogram()
        self.send_rate = RateMeter(clock=clock)

    def snapshot(
        self, queue_depth: int, in_flight: int, rate: float, paused: float
    ) -> dict[str, Any]:
        current = self.send_rate.rate()
        pace = min(rate, current) if current > 0 else rate
        mean, p99 = self.latency.mean, self.latency.quantile(0.99)
        return {
            "sent": self.sent,
            "retransmits": self.retransmits,
            "ack": self.ack,
            "nak": dict(self.nak),
            "timeouts": self.timeouts,
            "session_gone": self.session_gone,
            "recipe_errors": self.recipe_errors,
            "fallbacks": self.fallbacks,
            "unresolved": self.unresolved,
            "dropped": self.dropped,
            "bad_reply": self.bad_reply,
            "bad_source": self.bad_source,
            "unexpected": self.unexpected,
            "latency_avg_ms": None if mean is None else round(mean * 1000, 3),
            "latency_p99_ms": None if p99 is None else round(p99 * 1000, 3),
            "queue_depth": queue_depth,
            "in_flight": in_flight,
            "rate_current": round(current, 1),
            "paused_s": round(paused, 3),
            "eta_s": round(paused + queue_depth / pace, 1) if queue_depth else 0.0,
        }
