"""Pure logic: the drain ETA, the steady send rate and a NAS's degraded verdict."""

from __future__ import annotations

from debtgate.radius.stats import NasStats, RateMeter, drain_eta


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_eta_uses_configured_rate_without_a_steady_rate() -> None:
    assert drain_eta(0, 50.0, None, 0.0) == 0.0
    assert drain_eta(245, 50.0, None, 0.0) == 4.9
    assert drain_eta(245, 50.0, None, 2.0) == 6.9  # a 506 pause still running


def test_eta_uses_steady_rate_only_when_lower() -> None:
    assert drain_eta(100, 50.0, 10.0, 0.0) == 10.0  # the NAS answers slower than the rate
    assert drain_eta(100, 50.0, 500.0, 0.0) == 2.0  # the bucket caps at the configured rate


def test_eta_half_a_second_into_a_drain_after_an_idle_spell() -> None:
    """The acceptance case: a trickle 9 s ago, then a drain at 50/s; 0.5 s in, 245 queued."""
    clock = Clock(1000.0)
    stats = NasStats(clock)
    stats.send_rate.add(2)  # a lone request long before
    clock.now = 1009.0
    stats.send_rate.add(25)  # the burst half a second into the drain
    clock.now = 1009.5
    snap = stats.snapshot(245, 25, 50.0, 0.0)
    assert snap["eta_s"] == 4.9  # the 10-second average said 48-57 s here


def test_steady_rate_needs_every_recent_second() -> None:
    clock = Clock(100.2)
    meter = RateMeter(clock=clock)
    meter.add(30)
    clock.now = 101.1
    meter.add(30)
    clock.now = 102.4
    assert meter.steady_rate(3) is None  # second 99 saw nothing: not steady yet
    meter.add(30)
    clock.now = 103.0
    assert meter.steady_rate(3) == 30.0  # seconds 100, 101, 102
    clock.now = 105.5
    assert meter.steady_rate(3) is None  # a gap (104) again


def test_degraded_when_never_answered_and_when_silent_after_answering() -> None:
    clock = Clock()
    stats = NasStats(clock)
    assert stats.degraded(60) is None  # nothing sent: nothing to say
    stats.note_sent()
    clock.now += 59
    assert stats.degraded(60) is None
    clock.now += 18
    assert stats.degraded(60) == "no answer for 77 s (never answered)"
    stats.note_answer()
    assert stats.degraded(60) is None  # recovered with the answer
    clock.now += 300
    assert stats.degraded(60) is None  # quiet, but nothing was asked
    stats.note_sent()
    clock.now += 61
    stats.note_sent()  # later requests do not restart the silence
    assert stats.degraded(60) == "no answer for 61 s"
    snap = stats.snapshot(0, 0, 50.0, 0.0, degraded_after=60)
    assert snap["degraded"] == "no answer for 61 s" and snap["silent_s"] == 61.0
    assert snap["last_answer_ago_s"] == 361.0
