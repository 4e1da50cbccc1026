"""The API's latency histogram, scraped by a real Prometheus, groups by namespace and stack.

This is the query shape the autoscaler runs once per tick for every stack.
"""

from __future__ import annotations

import httpx
import pytest

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]


def test_one_query_gives_the_p95_per_namespace_and_stack(
    standalone_backend, workloads, prometheus, wait_for
):
    _, url = workloads.api()
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(30):
            assert (
                client.post("/v1/jobs", json={"task": "probe", "payload": {"n": n}}).status_code
                == 202
            )
    prometheus.add_scrape_target("workloads-api", url.removeprefix("http://"), wait_up=True)
    query = (
        "histogram_quantile(0.95, sum by (namespace, stack, le) ("
        f"{contract.METRIC_API_REQUEST_DURATION}_bucket))"
    )

    def grouped() -> bool:
        return any(
            series["metric"].get(contract.LABEL_STACK) == workloads.stack
            for series in prometheus.query(query)
        )

    wait_for(grouped, what="the stack's p95 in Prometheus", timeout=30)
    (series,) = [
        s for s in prometheus.query(query) if s["metric"][contract.LABEL_STACK] == workloads.stack
    ]
    assert series["metric"] == {
        contract.LABEL_NAMESPACE: "tests",
        contract.LABEL_STACK: workloads.stack,
    }
    assert 0 < float(series["value"][1]) < 1.0
