"""Latency queries: one per histogram and selector shape, the stack found by the labels
Prometheus attaches; templates are one query per stack."""

from __future__ import annotations

from typing import Any

from retention_operator.autoscaling import targets
from retention_operator.autoscaling.promql import HistogramSeries, StackQuery, parse_latency
from retention_operator.autoscaling.signals import LatencySource
from retention_operator.model import RetentionStack

from .conftest import stack_body


def _stack(name: str, namespace: str = "shop", **latency: Any) -> RetentionStack:
    body = stack_body(name, namespace, api={"autoscaling": {"latency": latency}})
    return RetentionStack.model_validate(body)


def test_pod_names_give_the_stack_of_the_api_pods_only() -> None:
    query = HistogramSeries(histogram="http_request_duration_seconds", series_by="podName")
    promql = query.promql()
    assert 'http_request_duration_seconds_bucket{namespace!="", pod=~"(.+)-api-[a-z0-9]+-' in promql
    assert "label_replace(rate(" in promql
    assert "sum by (namespace, retention_stack, le)" in promql
    assert "timestamp(http_request_duration_seconds_count{" in promql
    assert "label_replace(irate(http_request_duration_seconds_count{" in promql
    series = {"namespace": "shop", "retention_stack": "a-api-b", "signal": "rps"}
    assert query.key_of(series) == ("shop", "a-api-b")


def test_a_pod_label_names_the_stack_and_matchers_narrow_the_series() -> None:
    query = HistogramSeries(
        histogram="http_request_duration_seconds",
        stack_label="app_kubernetes_io_instance",
        namespace_label="kubernetes_namespace",
        matchers='route!="/healthz"',
    )
    promql = query.promql()
    selector = (
        'http_request_duration_seconds_count{kubernetes_namespace!="", '
        'app_kubernetes_io_instance!="", route!="/healthz"}'
    )
    assert f"sum by (kubernetes_namespace, app_kubernetes_io_instance) (rate({selector}[1m]))" in (
        promql
    )
    labels = {"kubernetes_namespace": "ns", "app_kubernetes_io_instance": "s", "signal": "p95"}
    readings = parse_latency(
        [
            {"metric": labels, "value": [1, "0.3"]},
            {"metric": {**labels, "signal": "rps"}, "value": [1, "12"]},
        ],
        now=5.0,
        query=query,
    )
    assert (readings[("ns", "s")].p95_ms, readings[("ns", "s")].rps) == (300.0, 12.0)


def test_stacks_sharing_a_histogram_and_selector_share_one_source() -> None:
    shape = {"histogram": "http_request_duration_seconds", "seriesBy": "podName"}
    sources = {
        targets.latency_source(stack, default="http://prom:9090")
        for stack in (
            _stack("a", **shape),
            _stack("b", "other", **shape),
            _stack("c", **shape),
        )
    }
    assert len(sources) == 1
    apart = targets.latency_source(_stack("d"), default="http://prom:9090")
    assert apart not in sources, "another histogram is another query"
    assert targets.latency_source(_stack("e"), default=None) is None


def test_a_template_is_rendered_for_its_stack_and_read_alone() -> None:
    stack = _stack(
        "orders",
        query={
            "p95Seconds": 'app:p95_seconds:1m{ns="{{namespace}}", app="{{name}}"}',
            "requestsPerSecond": 'sum(rate(app_requests_total{ns="{{namespace}}"}[1m]))',
        },
    )
    source = targets.latency_source(stack, default="http://prom:9090")
    assert isinstance(source, LatencySource) and isinstance(source.query, StackQuery)
    promql = source.query.promql()
    assert 'app:p95_seconds:1m{ns="shop", app="orders"}' in promql
    assert "{{" not in promql
    readings = parse_latency(
        [
            {"metric": {"signal": "p95", "app": "orders"}, "value": [1, "0.12"]},
            {"metric": {"signal": "rps"}, "value": [1, "30"]},
        ],
        now=5.0,
        query=source.query,
    )
    assert readings[("shop", "orders")].p95_ms == 120.0
    assert readings[("shop", "orders")].at == 5.0
    assert readings[("shop", "orders")].rps_recent is None, "a template gives the mean rate only"


def test_a_template_that_does_not_aggregate_is_an_error_not_a_guess() -> None:
    query = StackQuery(namespace="ns", name="s", p95_seconds="x", requests_per_second="y")
    result = [{"metric": {"signal": "p95", "pod": p}, "value": [1, "0.1"]} for p in "ab"]
    assert parse_latency(result, now=1.0, query=query)[("ns", "s")].error
