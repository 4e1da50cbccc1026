"""The Grafana dashboard shows replicas, p95, backlog and decisions per stack, in valid PromQL.

Every query of the operator's own metrics uses only metrics it exports; the
Redis and PgBouncer rows read their exporters' series (names checked against
real exporters by the alerts' tests). promtool parses each query (with the dashboard
variables filled in) as a recording rule.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

DASHBOARD = (
    Path(__file__).resolve().parents[3] / "charts" / "retention-operator" / "dashboards"
    / "retention-operator.json"
)  # fmt: skip

# The operator's metrics (telemetry.py); histograms add _bucket, _sum and _count.
EXPORTED = {
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds_bucket",
    "retention_operator_kube_requests_total",
    "retention_stack_condition",
    "retention_stack_replicas",
    "retention_stack_backlog",
    "retention_stack_dead_letters",
    "retention_stack_api_p95_seconds",
    "retention_autoscaler_decisions_total",
    "retention_autoscaler_tick_duration_seconds_bucket",
    "retention_autoscaler_query_errors_total",
}
METRIC = re.compile(r"\b((?:retention|controller_runtime)_[a-z0-9_]+)")


def _dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def _targets(board: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_panels_cover_replicas_p95_backlog_and_decisions_per_stack() -> None:
    board = _dashboard()
    by_title = dict(_targets(board))
    per_stack = {
        "Replicas": "retention_stack_replicas",
        "API p95 latency": "retention_stack_api_p95_seconds",
        "Queue backlog": "retention_stack_backlog",
        "Replica changes per stack": "retention_stack_replicas",
        "Dead letters": "retention_stack_dead_letters",
    }
    for title, metric in per_stack.items():
        assert metric in by_title[title]
        assert "by (namespace, stack" in by_title[title]
        assert 'stack=~"$stack"' in by_title[title]
    assert "retention_autoscaler_decisions_total" in by_title["Scaling decisions"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace", "stack"}


def test_redis_and_pgbouncer_panels_read_their_exporters() -> None:
    by_title = dict(_targets(_dashboard()))
    for title, metric in {
        "Redis memory of maxmemory": "redis_memory_max_bytes",
        "Redis clients": "redis_connected_clients",
        "Redis commands/s": "redis_commands_processed_total",
        "PgBouncer clients waiting": "pgbouncer_pools_client_waiting_connections",
        "Database connections": "pgbouncer_databases_database_current_connections",
    }.items():
        assert metric in by_title[title]
        assert 'stack=~"$stack"' in by_title[title]
        assert "by (namespace, stack" in by_title[title]


def test_queries_use_only_exported_metrics() -> None:
    for title, expr in _targets(_dashboard()):
        unknown = set(METRIC.findall(expr)) - EXPORTED
        assert not unknown, f"{title}: {unknown}"


def test_every_panel_reads_the_chosen_datasource() -> None:
    for panel in _dashboard()["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_queries_parse_as_promql(promtool: Path, tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$namespace", ".*").replace("$stack", ".*"),
        }
        for i, (_, expr) in enumerate(_targets(_dashboard()))
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
