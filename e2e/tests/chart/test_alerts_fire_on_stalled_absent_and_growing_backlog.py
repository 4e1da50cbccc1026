"""The PrometheusRule's alerts are valid and fire when they should, checked by promtool.

``promtool check rules`` checks the rendered groups (PromQL and annotation
templates); ``promtool test rules`` feeds synthetic series and checks which
alerts fire, and when. Annotations are left out of the unit tests: promtool
compares them verbatim, and what matters here is when an alert fires.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .conftest import RuleTests

Manifest = dict[str, Any]
JOB = "retention-system/r-retention-operator"


def _groups(render: Callable[..., list[Manifest]]) -> list[dict[str, Any]]:
    [rule] = [
        m
        for m in render(sets=["metrics.prometheusRule.enabled=true"], monitoring=True)
        if m["kind"] == "PrometheusRule"
    ]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def _promtool(promtool: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=60)


def test_rendered_rules_pass_promtool_check(
    render: Callable[..., list[Manifest]], promtool: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": _groups(render)}))
    out = _promtool(promtool, "check", "rules", str(rules))
    assert out.returncode == 0, out.stdout + out.stderr
    names = {r["alert"] for g in _groups(render) for r in g["rules"]}
    assert {
        "RetentionStackStalled",
        "RetentionOperatorMetricsAbsent",
        "RetentionAutoscalerSignalsFailing",
        "RetentionStackBacklogGrowing",
        "RetentionApiRefusingJobs",
        "RetentionRedisMemoryNearLimit",
        "RetentionPgBouncerClientsWaiting",
        "RetentionDeadLetterGrowing",
    } <= names


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


STACK = {"namespace": "shop", "stack": "orders", "job": JOB, "pod": "r-retention-operator-0"}
OTHER = {"namespace": "shop", "stack": "billing", "job": JOB, "pod": "r-retention-operator-0"}

TESTS: list[dict[str, Any]] = [
    {
        # orders turns Stalled at minute 5; it must stay so for stalledFor (10m).
        "interval": "1m",
        "input_series": [
            _series("retention_stack_condition", {**STACK, "type": "Stalled"}, "0x4 1x30"),
            _series("retention_stack_condition", {**OTHER, "type": "Stalled"}, "0x35"),
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "RetentionStackStalled", "exp_alerts": []},
            {
                "eval_time": "16m",
                "alertname": "RetentionStackStalled",
                "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "shop", "stack": "orders"}}
                ],
            },
        ],
    },
    {
        # The operator is scraped for 5 minutes, then its target disappears.
        "interval": "1m",
        "input_series": [_series("up", {"job": JOB, "instance": "10.0.0.7:8080"}, "1x5")],
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "RetentionOperatorMetricsAbsent", "exp_alerts": []},
            {
                "eval_time": "25m",
                "alertname": "RetentionOperatorMetricsAbsent",
                "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
            },
        ],
    },
    {
        # Scraped but down counts as absent too.
        "interval": "1m",
        "input_series": [_series("up", {"job": JOB, "instance": "10.0.0.7:8080"}, "0x30")],
        "alert_rule_test": [
            {
                "eval_time": "15m",
                "alertname": "RetentionOperatorMetricsAbsent",
                "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
            },
        ],
    },
    {
        # orders grows by 50 jobs a minute from 2000; billing stays flat at 5000
        # and a third stack grows but stays below the minimum (1000).
        "interval": "1m",
        "input_series": [
            _series("retention_stack_backlog", STACK, "2000+50x90"),
            _series("retention_stack_backlog", OTHER, "5000x90"),
            _series("retention_stack_backlog", {**STACK, "stack": "small"}, "10+5x90"),
        ],
        "alert_rule_test": [
            {"eval_time": "30m", "alertname": "RetentionStackBacklogGrowing", "exp_alerts": []},
            {
                "eval_time": "60m",
                "alertname": "RetentionStackBacklogGrowing",
                "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "shop", "stack": "orders"}}
                ],
            },
        ],
    },
    {
        # A backlog that grows then drains does not page anyone.
        "interval": "1m",
        "input_series": [_series("retention_stack_backlog", STACK, "2000+100x20 4000-100x40")],
        "alert_rule_test": [
            {"eval_time": "55m", "alertname": "RetentionStackBacklogGrowing", "exp_alerts": []},
        ],
    },
    {
        # orders's two API pods refuse jobs from minute 5 on (one of them only); billing
        # refused a burst once, then none: its rate drops to 0 before refusingJobsFor.
        "interval": "1m",
        "input_series": [
            _series(
                "retention_api_jobs_refused_total",
                {**STACK, "pod": "orders-api-a", "reason": "queue_full"},
                "0x4 0+30x30",
            ),
            _series(
                "retention_api_jobs_refused_total",
                {**STACK, "pod": "orders-api-b", "reason": "queue_full"},
                "0x35",
            ),
            _series(
                "retention_api_jobs_refused_total",
                {**OTHER, "pod": "billing-api-a", "reason": "redis_memory"},
                "0x4 40x31",
            ),
        ],
        "alert_rule_test": [
            {"eval_time": "10m", "alertname": "RetentionApiRefusingJobs", "exp_alerts": []},
            {
                "eval_time": "15m",
                "alertname": "RetentionApiRefusingJobs",
                "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "shop", "stack": "orders"}}
                ],
            },
        ],
    },
    {
        # orders dead-letters a job a minute from minute 10; billing has 3 dead letters
        # from before and no more; a third stack dead-letters one job at minute 10.
        "interval": "1m",
        "input_series": [
            _series("retention_stack_dead_letters", STACK, "0x9 1+1x30"),
            _series("retention_stack_dead_letters", OTHER, "3x40"),
            _series("retention_stack_dead_letters", {**STACK, "stack": "once"}, "0x9 1x30"),
        ],
        "alert_rule_test": [
            {"eval_time": "12m", "alertname": "RetentionDeadLetterGrowing", "exp_alerts": []},
            {
                "eval_time": "20m",
                "alertname": "RetentionDeadLetterGrowing",
                "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "shop", "stack": "orders"}},
                    {"exp_labels": {"severity": "warning", "namespace": "shop", "stack": "once"}},
                ],
            },
            {
                # A window (15m) after its one dead letter, "once" is quiet again.
                "eval_time": "30m",
                "alertname": "RetentionDeadLetterGrowing",
                "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "shop", "stack": "orders"}}
                ],
            },
        ],
    },
    {
        # Redis queries fail for 15 minutes: scaling holds, someone should look.
        "interval": "1m",
        "input_series": [
            _series(
                "retention_autoscaler_query_errors_total",
                {"source": "redis", "job": JOB},
                "0+12x30",
            ),
            _series(
                "retention_autoscaler_query_errors_total",
                {"source": "prometheus", "job": JOB},
                "0x30",
            ),
        ],
        "alert_rule_test": [
            {
                "eval_time": "20m",
                "alertname": "RetentionAutoscalerSignalsFailing",
                "exp_alerts": [{"exp_labels": {"severity": "warning", "source": "redis"}}],
            },
        ],
    },
]


def test_alerts_fire_when_they_should(promtool_test_rules: RuleTests) -> None:
    out = promtool_test_rules(TESTS)
    assert out.returncode == 0, out.stdout + out.stderr
