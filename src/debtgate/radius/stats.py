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

    def steady_rate(self, seconds: int = 3) -> float | None:
        """Events per second over the last ``seconds`` complete seconds, if every one of
        them saw events (sending went on without a gap); None otherwise.

        An idle stretch inside the window would make the rate look low (a drain that
        started half a second ago, after a quiet minute), so such a window gives None.
        """
        now = math.floor(self._clock())
        self._trim(now)
        counts = {int(b[0]): b[1] for b in self._buckets}
        wanted = [now - i for i in range(1, seconds + 1)]
        if seconds < 1 or any(counts.get(int(s), 0) <= 0 for s in wanted):
            return None
        return sum(counts[int(s)] for s in wanted) / seconds


def drain_eta(queue_depth: int, configured_rate: float, steady: float | None,
              paused: float) -> float:
    """Seconds until ``queue_depth`` queued requests are sent.

    The pace is the NAS's configured ``rate`` (the token bucket's refill rate), or the
    steady recent rate when it is lower (the NAS answers slower than that and the
    in-flight cap limits sending); plus any pause (Error-Cause 506) still running.
    """
    if queue_depth <= 0:
        return 0.0
    pace = configured_rate
    if steady is not None and 0 < steady < pace:
        pace = steady
    return round(paused + queue_depth / pace, 1)


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
        self._clock = clock
        self.last_answer: float | None = None
        """Clock time of the last verified reply (ACK or NAK), None before the first."""
        self.unanswered_since: float | None = None
        """Clock time of the first request sent after the last verified reply (None when
        nothing was sent since): the NAS has been silent since then."""

    def note_sent(self) -> None:
        """A first transmission went out."""
        if self.unanswered_since is None:
            self.unanswered_since = self._clock()

    def note_answer(self) -> None:
        """A verified reply arrived: the NAS answers."""
        self.last_answer = self._clock()
        self.unanswered_since = None

    def silent_for(self) -> float:
        """Seconds the NAS has been sent requests without a verified reply (0 if none)."""
        if self.unanswered_since is None:
            return 0.0
        return max(0.0, self._clock() - self.unanswered_since)

    def degraded(self, after: float) -> str | None:
        """Why the NAS counts as degraded (no answer for ``after`` s or more), or None."""
        silent = self.silent_for()
        if silent < after:
            return None
        if self.last_answer is None:
            return f"no answer for {silent:.0f} s (never answered)"
        return f"no answer for {silent:.0f} s"

    def snapshot(
        self, queue_depth: int, in_flight: int, rate: float, paused: float,
        degraded_after: float = 60.0,
    ) -> dict[str, Any]:
        current = self.send_rate.rate()
        last = self.last_answer
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
            "eta_s": drain_eta(queue_depth, rate, self.send_rate.steady_rate(), paused),
            "last_answer_ago_s": None if last is None else round(self._clock() - last, 1),
            "silent_s": round(self.silent_for(), 1),
            "degraded": self.degraded(degraded_after),
        }
