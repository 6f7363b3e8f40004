"""The Grafana dashboard and the Prometheus alert rules use metrics that exist."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from debtgate.api.metrics import make_registry, render
from tests.unit.api.sample import sample_status

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "examples/grafana/debtgate-dashboard.json"
ALERTS = ROOT / "examples/prometheus/alerts.yml"
METRIC = re.compile(r"\bdebtgate_[a-z0-9_]+")


def exposed() -> set[str]:
    status = sample_status()
    status["guard"]["since"] = 1740787200
    body, _ = render(make_registry(lambda: status))
    return {s.name for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}


def check_expr(expr: str, known: set[str]) -> None:
    names = set(METRIC.findall(expr))
    assert names, f"no debtgate metric in {expr!r}"
    assert names <= known, f"unknown metrics {names - known} in {expr!r}"
    for a, b in ("()", "{}", "[]"):
        assert expr.count(a) == expr.count(b), f"unbalanced {a}{b} in {expr!r}"


def test_alert_rules() -> None:
    yaml = pytest.importorskip("yaml")
    rules = yaml.safe_load(ALERTS.read_text())
    known = exposed()
    names = []
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            names.append(rule["alert"])
            check_expr(rule["expr"], known)
            assert rule["labels"]["severity"] in ("critical", "warning", "info")
            assert rule["annotations"]["summary"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert len(names) == len(set(names))
    wanted = {"DebtgateFeedStale", "DebtgateDriftRepaired", "DebtgateCoAFailing",
              "DebtgateGuardHolding", "DebtgatePortalErrors", "DebtgateDegraded"}
    assert wanted <= set(names)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def walk(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out += walk(p.get("panels", []))
    return out


def test_dashboard() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    panels = walk(dash["panels"])
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    known = exposed()
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    assert len(exprs) > 20
    for expr in exprs:
        check_expr(expr, known)
    for p in panels:
        pos = p["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("feed", "subscribers", "desired vs kernel", "drift", "apply", "nas", "guard",
                  "portal"):
        assert topic in titles


def test_dashboard_is_generated() -> None:
    module = runpy.run_path(str(DASHBOARD.with_name("generate.py")))
    assert module["dashboard"]() == json.loads(DASHBOARD.read_text())
