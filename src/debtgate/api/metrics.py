"""Prometheus metrics rendered from the management status dict at scrape time.

:class:`StatusCollector` calls a ``status()`` callable on every scrape and turns
the dict (shape in ``docs/api.md``) into ``debtgate_*`` metric families. Missing
keys and values of the wrong type are skipped, never raised: a half-filled
status still scrapes. :func:`render` negotiates the exposition format.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

StatusFn = Callable[[], Mapping[str, Any]]


def number(value: object) -> float | None:
    """``value`` as a finite float (bools count as 0/1), or None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def timestamp(value: object) -> float | None:
    """Epoch seconds from a number or an ISO 8601 string (naive means UTC), or None."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC).timestamp()
        return parsed.timestamp()
    if isinstance(value, datetime):
        return value.timestamp()
    return number(value)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _gauge(name: str, doc: str, value: object) -> Iterator[Metric]:
    v = number(value)
    if v is not None:
        yield GaugeMetricFamily(name, doc, value=v)


def _counter(name: str, doc: str, value: object) -> Iterator[Metric]:
    v = number(value)
    if v is not None:
        yield CounterMetricFamily(name, doc, value=v)


def _labelled(family: GaugeMetricFamily | CounterMetricFamily, labels: list[str],
              value: object) -> None:
    v = number(value)
    if v is not None:
        family.add_metric(labels, v)


class StatusCollector(Collector):
    """A custom collector: every scrape reads the status afresh."""

    def __init__(self, status: StatusFn) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        try:
            st = _map(self.status())
        except Exception:  # a scrape must never take the daemon down
            log.exception("status() failed during a metrics scrape")
            yield GaugeMetricFamily("debtgate_status_ok", "1 if status() answered", value=0)
            return
        yield GaugeMetricFamily("debtgate_status_ok", "1 if status() answered", value=1)
        yield from self._process(st)
        yield from self._feed(_map(st.get("feed")))
        yield from self._engine(st)
        yield from self._garden(_map(st.get("garden")))
        yield from self._radius(_map(st.get("radius")))
        yield from self._portal_guard(st)

    def _process(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        info = GaugeMetricFamily("debtgate_build_info", "Running version", labels=["version"])
        info.add_metric([str(st.get("version", "unknown"))], 1)
        yield info
        yield from _gauge("debtgate_uptime_seconds", "Seconds since start", st.get("uptime"))
        degraded = GaugeMetricFamily("debtgate_degraded", "1 per degraded component",
                                     labels=["component"])
        for component in _map(st.get("degraded")):
            degraded.add_metric([str(component)], 1)
        yield degraded

    def _feed(self, feed: Mapping[str, Any]) -> Iterator[Metric]:
        connected = GaugeMetricFamily("debtgate_feed_connected", "1 if the billing feed is up",
                                      labels=["kind"])
        _labelled(connected, [str(feed.get("kind", ""))], feed.get("connected"))
        yield connected
        yield from _gauge("debtgate_feed_last_snapshot_timestamp_seconds",
                          "When the last full snapshot was applied",
                          timestamp(feed.get("last_snapshot")))
        yield from _gauge("debtgate_feed_last_event_timestamp_seconds",
                          "When the last billing event arrived", timestamp(feed.get("last_event")))
        yield from _gauge("debtgate_feed_lag_seconds", "Billing feed lag", feed.get("lag"))
        yield from _gauge("debtgate_feed_error", "1 if the feed reports an error",
                          feed.get("last_error") is not None if feed else None)
        rejected = CounterMetricFamily("debtgate_rejected_rows", "Billing rows rejected",
                                       labels=["reason"])
        for reason, count in _map(feed.get("rejected")).items():
            _labelled(rejected, [str(reason)], count)
        yield rejected
        foreign = _map(feed.get("foreign"))
        yield from _gauge("debtgate_foreign_rows", "Rows of the last snapshot outside "
                          "[network] serves (another gateway's)", foreign.get("rows"))
        yield from _gauge("debtgate_foreign_addresses", "Addresses of the last snapshot "
                          "outside [network] serves", foreign.get("addresses"))

    def _engine(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        subs = GaugeMetricFamily("debtgate_subscribers", "Subscribers by state", labels=["state"])
        for state, count in _map(st.get("subscribers")).items():
            _labelled(subs, [str(state)], count)
        yield subs
        sets = GaugeMetricFamily("debtgate_set_elements", "nft set sizes, desired vs kernel",
                                 labels=["set", "view"])
        for name, views in _map(st.get("sets")).items():
            for view in ("desired", "kernel"):
                _labelled(sets, [str(name), view], _map(views).get(view))
        yield sets
        for key, doc in (("drift_repairs", "Kernel elements repaired after drift"),
                         ("applies", "nft transactions applied"),
                         ("kernel_writes", "Set elements written to the kernel"),
                         ("apply_errors", "nft transactions that failed"),
                         ("conntrack_cut", "Conntrack flows cut"),
                         ("bulk_slices", "Slices of bulk work (snapshots, storms, read-backs)"),
                         ("urgent_first",
                          "Times urgent work (a payment) went before a waiting bulk slice")):
            yield from _counter(f"debtgate_{key}", doc, st.get(key))
        yield from _gauge("debtgate_apply_seconds", "Duration of the last apply",
                          st.get("last_apply_seconds"))
        yield from _gauge("debtgate_overrides_active", "Manual overrides in force",
                          st.get("overrides"))

    def _garden(self, garden: Mapping[str, Any]) -> Iterator[Metric]:
        yield from _gauge("debtgate_garden_static_elements", "Static walled-garden elements",
                          garden.get("static"))
        addresses = GaugeMetricFamily("debtgate_garden_domain_addresses",
                                      "Resolved addresses per garden domain", labels=["domain"])
        expires = GaugeMetricFamily("debtgate_garden_domain_expires_in_seconds",
                                    "Seconds until the domain's addresses expire",
                                    labels=["domain"])
        error = GaugeMetricFamily("debtgate_garden_domain_error",
                                  "1 if the last resolution failed", labels=["domain"])
        for domain, info in _map(garden.get("domains")).items():
            info = _map(info)
            _labelled(addresses, [str(domain)], info.get("addresses"))
            _labelled(expires, [str(domain)], info.get("expires_in"))
            error.add_metric([str(domain)], 0 if info.get("error") is None else 1)
        yield from (addresses, expires, error)

    def _radius(self, radius: Mapping[str, Any]) -> Iterator[Metric]:
        requests = CounterMetricFamily("debtgate_radius_requests", "CoA/Disconnect requests",
                                       labels=["nas", "result"])
        naks = CounterMetricFamily("debtgate_radius_naks", "NAKs by Error-Cause",
                                   labels=["nas", "cause"])
        latency = GaugeMetricFamily("debtgate_radius_latency_seconds", "Average answer latency",
                                    labels=["nas"])
        depth = GaugeMetricFamily("debtgate_radius_queue_depth", "Requests waiting",
                                  labels=["nas"])
        eta = GaugeMetricFamily("debtgate_radius_queue_eta_seconds", "Time to drain the queue",
                                labels=["nas"])
        for nas, info in _map(radius).items():
            info, nas = _map(info), str(nas)
            _labelled(requests, [nas, "sent"], info.get("sent"))
            _labelled(requests, [nas, "ack"], info.get("ack"))
            _labelled(requests, [nas, "timeout"], info.get("timeouts"))
            nak = info.get("nak")
            if isinstance(nak, Mapping):
                _labelled(requests, [nas, "nak"], sum(number(v) or 0 for v in nak.values()))
                for cause, count in nak.items():
                    _labelled(naks, [nas, str(cause)], count)
            else:
                _labelled(requests, [nas, "nak"], nak)
            latency_ms = number(info.get("latency_avg_ms"))
            if latency_ms is not None:
                latency.add_metric([nas], latency_ms / 1000)
            _labelled(depth, [nas], info.get("queue_depth"))
            _labelled(eta, [nas], info.get("eta_s"))
        yield from (requests, naks, latency, depth, eta)

    def _portal_guard(self, st: Mapping[str, Any]) -> Iterator[Metric]:
        portal = _map(st.get("portal"))
        yield from _counter("debtgate_portal_views", "Portal subscriber views", portal.get("views"))
        yield from _counter("debtgate_portal_acks", "Warnings acknowledged", portal.get("acks"))
        yield from _counter("debtgate_portal_errors", "Portal channel errors",
                            portal.get("errors"))
        guard = _map(st.get("guard"))
        yield from _gauge("debtgate_guard_holding", "1 while the mass-block guard holds",
                          guard.get("holding"))
        yield from _gauge("debtgate_guard_held_restrictions", "Restrictions held by the guard",
                          guard.get("held_restrictions"))
        yield from _gauge("debtgate_guard_threshold_percent", "Guard threshold (percent)",
                          guard.get("threshold_percent"))
        yield from _gauge("debtgate_guard_threshold_count", "Guard threshold (count)",
                          guard.get("threshold_count"))
        yield from _gauge("debtgate_guard_holding_since_timestamp_seconds",
                          "When the guard started holding", timestamp(guard.get("since")))


def make_registry(status: StatusFn) -> CollectorRegistry:
    """A private registry: the status collector and ``process_*`` (no global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status))
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """The exposition body and its content type, negotiated from ``accept``."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
