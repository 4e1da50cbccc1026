"""A tick over 1,000 stacks sends one PromQL query and one Redis round trip, no more.

The first tick of a stack also wants its forecast's history: range queries, read beside
the ticks (history.py), counted apart (``source="prometheus-history"``) and printed here
(those sent while each tick ran).

The stacks' queues are of every kind (one in five each: a Redis Stream, BullMQ, RQ,
Celery, a plain list), all on one Redis: still one pipeline.

Real Prometheus and Redis from the harness; the API server is the in-memory
fake (conftest.py), so the tick's CPU time is the loop's own. The count is
taken three ways: the operator's ``retention_autoscaler_queries_total``,
Prometheus's own ``prometheus_http_requests_total{handler="/api/v1/query"}``,
and Redis's command statistics and connection count.

Run alone to see the figures: ``.venv/bin/python -m pytest -m services -s -q
operator/tests/autoscaling/test_signals_one_round_trip_per_endpoint_for_1000_stacks.py``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

import retention_contract as contract
from harness.procs import free_port
from retention_operator import telemetry
from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.autoscaling.signals import (
    SOURCE_PROMETHEUS_HISTORY,
    SignalReader,
)
from retention_operator.settings import Settings

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

STACKS = 1000
NAMESPACES = 20
# Stack n's queue: KINDS[n % 5]; multiples of 100 are streams (the ones with entries).
KINDS: tuple[dict[str, Any], ...] = (
    {},
    {"bullmq": {"name": "mail"}},
    {"rq": {}},
    {"celery": {}},
    {"list": {"key": "jobs", "inProgressKey": "jobs:busy"}},
)
EXPORTED = {("ns0", "s0"): 0.05, ("ns1", "s1"): 0.4}  # (namespace, stack) -> request seconds
_QUERY_LINE = re.compile(
    r'^prometheus_http_requests_total\{code="200",handler="/api/v1/query"\} ([0-9.e+]+)$'
)


@pytest.fixture
def exporter(prometheus: Any) -> Iterator[None]:
    """An API exporter of two stacks, scraped by the harness Prometheus, observing steadily."""
    registry = CollectorRegistry()
    histogram = Histogram(
        contract.METRIC_API_REQUEST_DURATION,
        "API request duration.",
        ["namespace", "stack", "route", "method", "status"],
        registry=registry,
        buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0),
    )
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def observe() -> None:
        while not stop.wait(0.05):
            for (namespace, stack), seconds in EXPORTED.items():
                histogram.labels(namespace, stack, "/v1/jobs", "POST", "202").observe(seconds)

    observer = threading.Thread(target=observe, daemon=True)
    observer.start()
    prometheus.add_scrape_target(f"api-{port}", f"127.0.0.1:{port}", wait_up=True)
    try:
        yield
    finally:
        stop.set()
        observer.join(timeout=2)
        server.shutdown()
        thread.join(timeout=2)


def _prometheus_queries(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        match = _QUERY_LINE.match(line)
        if match:
            return float(match.group(1))
    return 0.0


def _ours(source: str) -> float:
    return telemetry.AUTOSCALER_QUERIES.labels(source=source)._value.get()


def _redis_counts(conn: Any) -> tuple[int, int, int, int]:
    stats = conn.info("commandstats")
    calls = {
        name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
        for name in ("xinfo|stream", "xinfo|groups", "eval", "llen")
    }
    connections = int(conn.info("stats")["total_connections_received"])
    return calls["xinfo|stream"], calls["eval"], calls["llen"], connections


def _wait_for_latency(prometheus: Any) -> None:
    deadline = time.monotonic() + 30
    query = f"rate({contract.METRIC_API_REQUEST_DURATION}_count[1m]) > 0"
    while time.monotonic() < deadline:
        if len(prometheus.query(query)) >= len(EXPORTED):
            return
        time.sleep(0.5)
    raise AssertionError("the exporter's request rate never showed in Prometheus")


async def test_one_query_and_one_round_trip_per_endpoint(
    prometheus: Any, redis_db: Any, exporter: None, kube: Any, make_stack: Any
) -> None:
    _wait_for_latency(prometheus)
    with redis_db.client() as conn:
        for n in range(0, STACKS, 100):
            for i in range(n % 7 + 1):
                conn.xadd(contract.default_stream(f"ns{n % NAMESPACES}", f"s{n}"), {"job": str(i)})
            conn.xgroup_create(
                contract.default_stream(f"ns{n % NAMESPACES}", f"s{n}"), "workers", id="0"
            )
    settings = Settings(prometheus_url=prometheus.url, tick_seconds=5.0)
    loop = AutoscalingLoop(kube=kube, settings=settings, reader=SignalReader(timeout=5.0))
    for n in range(STACKS):
        queue = KINDS[n % len(KINDS)]
        body = make_stack(
            f"s{n}",
            namespace=f"ns{n % NAMESPACES}",
            redis_url=redis_db.url,
            workers={"queue": queue},
        )
        kube.add_stack(body)
        loop.track(body)

    figures = []
    history: list[float] = []
    with redis_db.client() as conn:
        try:
            for _ in range(2):
                before = (
                    _ours("prometheus"),
                    _ours("redis"),
                    _prometheus_queries(prometheus.url),
                    _redis_counts(conn),
                )
                cpu, read = time.process_time(), _ours(SOURCE_PROMETHEUS_HISTORY)
                report = await loop.tick()
                cpu = time.process_time() - cpu
                history.append(_ours(SOURCE_PROMETHEUS_HISTORY) - read)
                after = (
                    _ours("prometheus"),
                    _ours("redis"),
                    _prometheus_queries(prometheus.url),
                    _redis_counts(conn),
                )
                figures.append((report, cpu, before, after))
        finally:
            await loop.stop()

    print(f"\nthe forecast's history range queries during the first and second tick: {history}")
    for report, cpu, before, after in figures:
        assert report.stacks == STACKS and report.errors == 0
        assert after[0] - before[0] == 1, "operator-side PromQL queries"
        assert after[1] - before[1] == 1, "operator-side Redis round trips"
        assert after[2] - before[2] == 1, "queries Prometheus served"
        streams, scripts, lengths, connections = (
            a - b for a, b in zip(after[3], before[3], strict=True)
        )
        kind = STACKS // len(KINDS)
        # The INFO calls of this test are not XINFO. A stream costs a script (whose XINFO
        # STREAM Redis counts too); BullMQ, RQ and Celery a script each (whose LLENs Redis counts
        # too: 3 + 1 + 4 for the empty queues; RQ's intermediate list is an LRANGE); a
        # list two LLENs.
        assert (streams, scripts) == (kind, 4 * kind)
        assert lengths == kind * (3 + 1 + 4 + 2)
        assert connections <= 1  # the loop's client connects once and keeps its connection
        print(
            f"\ntick over {STACKS} stacks: prometheus queries={after[2] - before[2]:.0f}, "
            f"redis pipelines={after[1] - before[1]:.0f} "
            f"({4 * kind + kind + 2 * kind} commands), "
            f"wall={report.seconds * 1000:.0f} ms, cpu={cpu * 1000:.0f} ms, "
            f"replica writes={report.replica_writes}, status writes={report.status_writes}"
        )
    status = kube.status
    assert status[("ns1", "s1")]["autoscaling"]["api"]["p95Milliseconds"] > 300
    assert 0 < status[("ns0", "s0")]["autoscaling"]["api"]["p95Milliseconds"] < 100
    assert "p95Milliseconds" not in status[("ns2", "s2")]["autoscaling"]["api"]
    assert status[("ns0", "s100")]["backlog"] == 100 % 7 + 1
    assert status[("ns2", "s2")]["backlog"] == 0
    for n in range(1, len(KINDS)):  # every kind read its empty queue without an error
        workers = status[(f"ns{n}", f"s{n}")]["autoscaling"]["workers"]
        assert workers["backlog"] == 0 and workers["lastDecision"] != "Fallback", workers
    assert status[("ns0", "s100")]["autoscaling"]["workers"]["queueWaitSeconds"] >= 0
    assert status[("ns2", "s2")]["autoscaling"]["workers"]["queueWaitSeconds"] == 0
