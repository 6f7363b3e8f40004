"""Token bucket pacing per NAS, with an injectable clock for tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; pausable (Error-Cause 506)."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._paused_until = 0.0

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill(self._clock())
        return self._tokens

    def try_take(self) -> float:
        """Take a token and return 0, or return the seconds until one is available."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        self._refill(now)
        if self._tokens >= 1.0 - 1e-9:  # float error must not stall the bucket
            self._tokens = max(0.0, self._tokens - 1.0)
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds``; the bucket restarts empty afterwards."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
        self._stamp = self._paused_until

    @property
    def paused_for(self) -> float:
        """Seconds left in a pause (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    async def take(self, sleep: Sleep = asyncio.sleep) -> None:
        """Wait until a token is available and take it."""
        while (wait := self.try_take()) > 0:
            await sleep(wait)
