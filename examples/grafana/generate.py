"""Write debtgate-dashboard.json (run: python examples/grafana/generate.py).

The dashboard is generated so panels stay consistent; edit here, not in the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance"'
_ids = iter(range(1, 1000))


def target(expr: str, legend: str = "", ref: str = "A") -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref}


def panel(kind: str, title: str, targets: list[dict[str, Any]], x: int, y: int, w: int = 8,
          h: int = 8, unit: str = "short", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": next(_ids), "type": kind, "title": title, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
    out.update(extra)
    return out


def row(title: str, y: int) -> dict[str, Any]:
    return {"id": next(_ids), "type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def stat(title: str, expr: str, x: int, y: int, unit: str = "short",
         steps: list[tuple[str, float | None]] | None = None, w: int = 4) -> dict[str, Any]:
    p = panel("stat", title, [target(expr)], x, y, w=w, h=4, unit=unit)
    thresholds = [{"color": c, "value": v} for c, v in (steps or [("green", None)])]
    p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": thresholds}
    p["options"] = {"colorMode": "background", "graphMode": "none",
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return p


def panels() -> list[dict[str, Any]]:
    red_if_0 = [("red", None), ("green", 1)]
    red_if_1 = [("green", None), ("red", 1)]
    out = [
        row("Overview", 0),
        stat("Feed connected", f"max(debtgate_feed_connected{{{SEL}}})", 0, 1, steps=red_if_0),
        stat("Since last billing event",
             f"time() - max(debtgate_feed_last_event_timestamp_seconds{{{SEL}}})", 4, 1, "s",
             [("green", None), ("yellow", 600), ("red", 1800)]),
        stat("Guard holding", f"max(debtgate_guard_holding{{{SEL}}})", 8, 1, steps=red_if_1),
        stat("Held restrictions", f"sum(debtgate_guard_held_restrictions{{{SEL}}})", 12, 1),
        stat("Degraded components", f"count(debtgate_degraded{{{SEL}}} == 1) or vector(0)",
             16, 1, steps=red_if_1),
        stat("Drift repairs (24h)", f"sum(increase(debtgate_drift_repairs_total{{{SEL}}}[24h]))",
             20, 1, steps=[("green", None), ("orange", 1)]),
        row("Billing feed", 5),
        panel("timeseries", "Feed lag", [target(f"debtgate_feed_lag_seconds{{{SEL}}}",
                                                "{{instance}}")], 0, 6, unit="s"),
        panel("timeseries", "Rejected billing rows by reason",
              [target(f"sum by (reason) (increase(debtgate_rejected_rows_total{{{SEL}}}[5m]))",
                      "{{reason}}")], 8, 6),
        panel("table", "Degraded components",
              [target(f"debtgate_degraded{{{SEL}}} == 1", "{{component}}")], 16, 6,
              options={"showHeader": True}),
        row("Subscribers and kernel sets", 14),
        panel("timeseries", "Subscribers by state",
              [target(f"sum by (state) (debtgate_subscribers{{{SEL}}})", "{{state}}")], 0, 15),
        panel("timeseries", "Set elements: desired vs kernel",
              [target(f"sum by (set, view) (debtgate_set_elements{{{SEL}}})",
                      "{{set}} {{view}}")], 8, 15),
        panel("timeseries", "Drift repairs", [target(
            f"sum(increase(debtgate_drift_repairs_total{{{SEL}}}[5m]))", "repaired elements")],
            16, 15),
        row("Engine", 23),
        panel("timeseries", "Last apply duration",
              [target(f"debtgate_apply_seconds{{{SEL}}}", "{{instance}}")], 0, 24, unit="s"),
        panel("timeseries", "Applies and kernel writes", [
            target(f"sum(rate(debtgate_applies_total{{{SEL}}}[5m]))", "applies/s"),
            target(f"sum(rate(debtgate_kernel_writes_total{{{SEL}}}[5m]))", "writes/s", "B"),
            target(f"sum(rate(debtgate_apply_errors_total{{{SEL}}}[5m]))", "errors/s", "C")],
            8, 24, unit="ops"),
        panel("timeseries", "Conntrack flows cut", [target(
            f"sum(rate(debtgate_conntrack_cut_total{{{SEL}}}[5m]))", "flows/s")], 16, 24,
            unit="ops"),
        row("RADIUS CoA / Disconnect", 32),
        panel("timeseries", "Requests per NAS by result", [target(
            f"sum by (nas, result) (rate(debtgate_radius_requests_total{{{SEL}}}[5m]))",
            "{{nas}} {{result}}")], 0, 33, unit="reqps"),
        panel("timeseries", "NAK causes", [target(
            f"sum by (nas, cause) (increase(debtgate_radius_naks_total{{{SEL}}}[5m]))",
            "{{nas}} {{cause}}")], 8, 33),
        panel("timeseries", "Queue depth and latency", [
            target(f"debtgate_radius_queue_depth{{{SEL}}}", "{{nas}} queued"),
            target(f"debtgate_radius_latency_seconds{{{SEL}}}", "{{nas}} latency", "B")],
            16, 33, fieldConfig={"defaults": {"unit": "short"}, "overrides": [{
                "matcher": {"id": "byFrameRefID", "options": "B"},
                "properties": [{"id": "unit", "value": "s"},
                               {"id": "custom.axisPlacement", "value": "right"}]}]}),
        row("Guard, portal and garden", 41),
        panel("timeseries", "Guard", [
            target(f"max(debtgate_guard_holding{{{SEL}}})", "holding"),
            target(f"sum(debtgate_guard_held_restrictions{{{SEL}}})", "held restrictions", "B")],
            0, 42),
        panel("timeseries", "Portal", [
            target(f"sum(rate(debtgate_portal_views_total{{{SEL}}}[5m]))", "views/s"),
            target(f"sum(rate(debtgate_portal_acks_total{{{SEL}}}[5m]))", "acks/s", "B"),
            target(f"sum(rate(debtgate_portal_errors_total{{{SEL}}}[5m]))", "errors/s", "C")],
            8, 42, unit="ops"),
        panel("timeseries", "Walled-garden domains", [
            target(f"debtgate_garden_domain_addresses{{{SEL}}}", "{{domain}}"),
            target(f"debtgate_garden_domain_error{{{SEL}}} == 1", "{{domain}} failing", "B")],
            16, 42),
    ]
    return out


def dashboard() -> dict[str, Any]:
    return {
        "title": "debtgate", "uid": "debtgate-noc", "tags": ["debtgate", "noc"],
        "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []}, "links": [],
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "label": "Data source", "current": {}, "hide": 0},
            {"name": "instance", "type": "query", "datasource": DS, "label": "Gateway",
             "query": {"query": "label_values(debtgate_build_info, instance)", "refId": "I"},
             "definition": "label_values(debtgate_build_info, instance)", "refresh": 2,
             "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "hide": 0},
        ]},
        "panels": panels(),
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("debtgate-dashboard.json")
    out.write_text(json.dumps(dashboard(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
