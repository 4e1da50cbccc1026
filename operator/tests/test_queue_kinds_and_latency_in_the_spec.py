"""spec.workers.queue names one queue kind, fits the Redis it lives in, and spec.api's
latency selects a histogram's series; the model refuses what the CEL rules refuse."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from retention_operator.model import RetentionStack, RetentionStackSpec

EXTERNAL = {"external": {"url": "redis://r:6379"}}
CLUSTER = {"external": {"url": "redis://r:6379", "cluster": True}}


def _spec(*, queue: dict[str, Any], redis: dict[str, Any] | None = None, **api: Any) -> Any:
    body = {
        "api": {"image": "app:1", **({"autoscaling": {"latency": api}} if api else {})},
        "workers": {"queue": queue},
        "redis": copy.deepcopy(redis or EXTERNAL),
        "pgbouncer": {
            "database": {"host": "pg", "name": "app", "user": "app"},
            "credentialsSecretRef": {"name": "pg"},
        },
    }
    return RetentionStackSpec.model_validate(body)


def _refused(**kwargs: Any) -> str:
    with pytest.raises(ValidationError) as info:
        _spec(**kwargs)
    return str(info.value)


@pytest.mark.parametrize(
    ("queue", "kind"),
    [
        ({}, "streams"),
        ({"stream": "jobs", "group": "g"}, "streams"),
        ({"bullmq": {"name": "emails"}}, "bullmq"),
        ({"rq": {}}, "rq"),
        ({"celery": {}}, "celery"),
        ({"list": {"key": "jobs"}}, "list"),
    ],
)
def test_the_block_that_is_set_names_the_kind(queue: dict[str, Any], kind: str) -> None:
    assert _spec(queue=queue).workers.queue.kind == kind


def test_each_kind_has_its_libraries_defaults() -> None:
    assert _spec(queue={"bullmq": {"name": "q"}}).workers.queue.bullmq.prefix == "bull"
    rq = _spec(queue={"rq": {}}).workers.queue.rq
    assert (rq.name, rq.prefix) == ("default", "rq")
    celery = _spec(queue={"celery": {}}).workers.queue.celery
    assert (celery.name, celery.key_prefix, celery.priority_steps) == ("celery", "", [0, 3, 6, 9])
    assert _spec(queue={}).workers.queue.consumer_group == "workers"


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ({"bullmq": {"name": "q"}, "rq": {}}, "must set at most one of bullmq, rq, celery"),
        ({"celery": {}, "list": {"key": "k"}}, "must set at most one"),
        ({"group": "workers", "bullmq": {"name": "q"}}, "stream and group belong to a Redis"),
        ({"stream": "s", "list": {"key": "k"}}, "stream and group belong"),
        ({"bullmq": {}}, "name"),
        ({"list": {"key": "has space"}}, "key"),
        ({"rq": {"prefix": "rq prefix"}}, "prefix"),
    ],
)
def test_a_queue_of_two_kinds_is_refused(queue: dict[str, Any], message: str) -> None:
    assert message in _refused(queue=queue)


@pytest.mark.parametrize(
    ("queue", "redis", "message"),
    [
        ({"bullmq": {"name": "q"}}, CLUSTER, "must hold a hash tag such as {bull}"),
        ({"bullmq": {"name": "q"}}, {"managed": {}}, "hash tag"),
        ({"bullmq": {"name": "q", "prefix": "b{}"}}, CLUSTER, "hash tag"),
        ({"rq": {}}, CLUSTER, "the prefix must be a hash tag such as {rq}"),
        ({"celery": {}}, CLUSTER, "kombu's Redis transport does not support Redis Cluster"),
        ({"celery": {}}, {"managed": {}}, "needs a standalone Redis"),
    ],
)
def test_a_cluster_needs_the_hash_tags_each_library_uses(
    queue: dict[str, Any], redis: dict[str, Any], message: str
) -> None:
    assert message in _refused(queue=queue, redis=redis)


@pytest.mark.parametrize(
    "queue",
    [
        {"bullmq": {"name": "q", "prefix": "{bull}"}},
        {"bullmq": {"name": "{q}"}},
        {"rq": {"prefix": "{rq}"}},
        {"list": {"key": "jobs"}},
    ],
)
def test_hash_tagged_queues_are_accepted_on_a_cluster(queue: dict[str, Any]) -> None:
    assert _spec(queue=queue, redis=CLUSTER).workers.queue.kind != "streams"


def test_latency_selects_any_histogram_by_the_labels_prometheus_attaches() -> None:
    latency = _spec(
        queue={},
        histogram="http_request_duration_seconds",
        seriesBy="podName",
        matchers='route!="/healthz", method=~"GET|POST"',
    ).api.autoscaling.latency
    assert (latency.histogram, latency.series_by, latency.pod_label) == (
        "http_request_duration_seconds",
        "podName",
        "pod",
    )


@pytest.mark.parametrize(
    ("latency", "field"),
    [
        ({"histogram": "http-duration"}, "histogram"),
        ({"seriesBy": "node"}, "seriesBy"),
        ({"stackLabel": "app.kubernetes.io/instance"}, "stackLabel"),
        ({"matchers": 'route="/x"} or vector(1) or {a="b"'}, "matchers"),
        ({"matchers": "route=/x"}, "matchers"),
        ({"query": {"p95Seconds": "x"}}, "requestsPerSecond"),
    ],
)
def test_latency_refuses_what_is_not_promql_names(latency: dict[str, Any], field: str) -> None:
    assert field in _refused(queue={}, **latency)


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/stack.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_each_example_has_a_stack_of_its_queue_kind(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"].setdefault("namespace", "default")
    stack = RetentionStack.model_validate(body)
    assert stack.spec.workers.queue.kind == path.parent.name
    assert stack.spec.api.autoscaling.latency.series_by == "podName"
