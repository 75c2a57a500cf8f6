"""deploy/grafana and deploy/prometheus: the dashboard and alert rules use only metrics crmflow serves, and
promtool (Debian's `prometheus` package, installed by .ci/run) finds the rules valid and their unit tests green."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import REPO
from workers import metrics
from workers.metrics import SharedState

DASHBOARD = REPO / "deploy" / "grafana" / "crmflow-dashboard.json"
PROMETHEUS = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "crmflow-alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")
METRIC = re.compile(r"\bcrmflow_[a-z_]+")
# The issue's metrics: each must be on the dashboard.
REQUIRED = {
    "crmflow_webhooks_total",
    "crmflow_jobs_total",
    "crmflow_actions_total",
    "crmflow_crm_requests_total",
    "crmflow_crm_request_duration_seconds_bucket",
    "crmflow_queue_depth",
    "crmflow_queue_oldest_age_seconds",
    "crmflow_deadletters",
    "crmflow_event_lag_seconds_bucket",
    "crmflow_zoho_channel_expiry_timestamp_seconds",
    "crmflow_duty_last_completed_timestamp_seconds",
}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def served() -> set[str]:
    """Every series name crmflow's /metrics can carry."""
    state = SharedState(
        queue_depth=0,
        first_due_s=None,
        deadletters=0,
        channel_expiry_s={"1": 0.0},
        duty_completed_s={"sweep:zoho": 0.0},
        sweep_cursor_s={("zoho", "Appointments__s"): 0.0},
    )
    text = metrics.exposition(state, 0.0).decode()
    return {family.name + suffix for family in text_string_to_metric_families(text) for suffix in SUFFIXES[family.type]}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = dashboard()

    assert board["uid"] == "crmflow" and board["title"] == "crmflow"
    assert isinstance(board["schemaVersion"], int)
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == ("datasource", "datasource", "prometheus")
    panels = board["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["title"] and panel["description"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets and len({target["refId"] for target in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == panel["datasource"] and target["expr"]


def test_no_two_panels_overlap_and_all_fit_the_grid() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        mine = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & mine, panel["title"]
        cells |= mine


def test_the_dashboard_shows_every_metric_of_the_issue_and_nothing_crmflow_does_not_serve() -> None:
    used = {name for expr in expressions() for name in METRIC.findall(expr)}

    assert used <= served()
    assert used >= REQUIRED


def test_the_alerts_cover_the_issue_and_use_only_served_metrics() -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}

    # No webhook for N hours, a growing queue, dead letters, a channel expiring soon.
    assert {"CrmflowNoWebhooks", "CrmflowQueueGrowing", "CrmflowDeadLetters", "CrmflowZohoChannelExpiringSoon"} <= names
    for rule in rules:
        assert set(METRIC.findall(rule["expr"])) <= served(), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS)


@needs_promtool
def test_promtool_finds_the_rules_and_the_configuration_valid() -> None:
    rules = promtool("check", "rules", ALERTS.name)
    config = promtool("check", "config", "prometheus.yml")

    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert config.returncode == 0, config.stdout + config.stderr


@needs_promtool
def test_the_alerts_fire_when_their_unit_tests_say() -> None:
    run = promtool("test", "rules", "crmflow-alerts.test.yml")

    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses the expressions of recording rules; Grafana's $__rate_interval stands for a duration.
    records = [
        {"record": f"crmflow:panel_{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(expressions())
    ]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": records}]}))

    run = promtool("check", "rules", str(tmp_path / "panels.yml"))

    assert run.returncode == 0, run.stdout + run.stderr
