"""Metrics rendered from the status dict, at scrape time, robust to missing keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from debtgate.api.metrics import make_registry, render
from tests.unit.api.sample import sample_status


def samples(status: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = render(make_registry(status if callable(status) else lambda: status))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body.decode())
            for s in fam.samples if s.name.startswith("debtgate_")}


def value(got: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return got[(name, tuple(sorted(labels.items())))]


def test_full_status() -> None:
    got = samples(sample_status())
    assert value(got, "debtgate_subscribers", state="warn") == 30
    assert value(got, "debtgate_set_elements", set="warn_v4", view="desired") == 30
    assert value(got, "debtgate_set_elements", set="warn_v4", view="kernel") == 29
    assert value(got, "debtgate_drift_repairs_total") == 1
    assert value(got, "debtgate_feed_connected", kind="postgres") == 1
    assert value(got, "debtgate_feed_lag_seconds") == 0.4
    assert value(got, "debtgate_rejected_rows_total", reason="bad_address") == 3
    assert value(got, "debtgate_radius_requests_total", nas="bras-1", result="sent") == 100
    assert value(got, "debtgate_radius_requests_total", nas="bras-1", result="nak") == 3
    assert value(got, "debtgate_radius_requests_total", nas="bras-1", result="timeout") == 2
    assert value(got, "debtgate_radius_naks_total", nas="bras-1", cause="session-not-found") == 3
    assert value(got, "debtgate_radius_queue_depth", nas="bras-1") == 0
    assert value(got, "debtgate_guard_holding") == 0
    assert value(got, "debtgate_guard_threshold_percent") == 5
    assert value(got, "debtgate_portal_views_total") == 500
    assert value(got, "debtgate_portal_errors_total") == 2
    assert value(got, "debtgate_apply_seconds") == 0.012
    assert value(got, "debtgate_degraded", component="radius:bras-2") == 1
    assert value(got, "debtgate_garden_domain_error", domain="bank.example") == 1
    assert value(got, "debtgate_garden_domain_error", domain="pay.example.net") == 0
    assert value(got, "debtgate_build_info", version="0.1.0") == 1
    assert value(got, "debtgate_status_ok") == 1


def test_timestamps_from_numbers_and_iso() -> None:
    st_ = sample_status()
    st_["feed"]["last_event"] = "2025-03-01T00:00:00Z"
    st_["feed"]["last_snapshot"] = 1740787200
    st_["guard"] = {"holding": True, "since": "2025-03-01T00:00:00"}
    got = samples(st_)
    assert value(got, "debtgate_feed_last_event_timestamp_seconds") == 1740787200
    assert value(got, "debtgate_feed_last_snapshot_timestamp_seconds") == 1740787200
    assert value(got, "debtgate_guard_holding_since_timestamp_seconds") == 1740787200
    assert value(got, "debtgate_guard_holding") == 1


def test_read_at_scrape_time() -> None:
    status: dict[str, Any] = {"subscribers": {"active": 1}}
    registry = make_registry(lambda: status)
    assert b'debtgate_subscribers{state="active"} 1.0' in render(registry)[0]
    status["subscribers"]["active"] = 5
    assert b'debtgate_subscribers{state="active"} 5.0' in render(registry)[0]


@pytest.mark.parametrize("status", [
    {}, {"feed": None, "sets": [], "radius": "x", "guard": 3, "garden": {"domains": None}},
    {"sets": {"a": {"desired": "many"}}, "radius": {"n": None}, "uptime": float("nan")},
    {"feed": {"rejected": {"r": None}, "lag": True}, "radius": {"n": {"nak": 4}}},
])
def test_missing_or_wrong_keys(status: dict[str, Any]) -> None:
    got = samples(status)
    assert value(got, "debtgate_status_ok") == 1
    assert value(got, "debtgate_build_info", version="unknown") == 1
    assert not any(name == "debtgate_set_elements" for name, _ in got)


def test_status_raising_still_scrapes() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("bug")

    got = samples(broken)
    assert value(got, "debtgate_status_ok") == 0


JSONISH = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                       lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
                       max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(sample_status())), JSONISH))
def test_never_raises(status: dict[str, Any]) -> None:
    assert value(samples(status), "debtgate_status_ok") == 1


def test_content_type_negotiation() -> None:
    registry = make_registry(sample_status)
    assert render(registry)[1].startswith("text/plain; version=0.0.4")
    body, ctype = render(registry, "application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")


def test_radius_latency_and_eta_have_samples_from_a_real_nas_snapshot() -> None:
    """The metrics read the keys the NAS status really holds (latency_avg_ms, eta_s)."""
    from debtgate.radius.stats import NasStats  # noqa: PLC0415

    stats = NasStats()
    stats.latency.add(0.02)
    snap = stats.snapshot(100, 0, 50.0, 0.0)
    body, _ = render(make_registry(lambda: {"radius": {"bras-1": snap}}))
    got = {s.name: s.value for fam in text_string_to_metric_families(body.decode())
           for s in fam.samples}
    assert abs(got["debtgate_radius_latency_seconds"] - 0.02) < 1e-9
    assert got["debtgate_radius_queue_eta_seconds"] == 2.0
