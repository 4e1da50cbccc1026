"""A Hono API's own histogram, found by the labels Prometheus attaches, scales the API.

The example's API (``examples/bullmq``: Hono, @hono/node-server, prom-client, BullMQ,
from the npm registry) runs as a process and exports ``http_request_duration_seconds``
with no label naming the stack. The real Prometheus scrapes it with the target labels
``namespace`` and ``pod`` (here from static_configs; on Kubernetes the pod discovery's
relabeling attaches the same two), and the stacks say ``seriesBy: podName``. A bounded
load of slow requests makes the loop (real signal reader, in-memory API server) scale
the API out, with one PromQL query for both stacks that share the histogram.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import node_apps
from harness.procs import free_port, wait_until
from retention_operator import telemetry
from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.autoscaling.signals import SignalReader
from retention_operator.settings import Settings

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

LATENCY = {"histogram": "http_request_duration_seconds", "seriesBy": "podName"}
SLOW_MS = 400
LOAD_SECONDS = 40.0


@pytest.fixture
def hono_api(redis_db: Any, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "RETENTION_REDIS_URL": redis_db.url,
        "RETENTION_QUEUE_NAME": "messages",
        "RETENTION_HTTP_PORT": str(port),
        "RETENTION_BIND_ADDRESS": "127.0.0.1",
    }
    proc = node_apps.BULLMQ_EXAMPLE.start("src/api.js", run_dir=tmp_path, name="api", env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="api", timeout=30,
                   proc=proc)  # fmt: skip
        yield url
    finally:
        proc.stop(timeout=10)


def _load(url: str, stop: threading.Event) -> None:
    """Slow requests from 8 clients until ``stop`` or LOAD_SECONDS, whichever comes first."""
    deadline = time.monotonic() + LOAD_SECONDS

    def client() -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not stop.is_set() and time.monotonic() < deadline:
                http.get("/v1/simulate", params={"ms": SLOW_MS})

    threads = [threading.Thread(target=client, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LOAD_SECONDS + 10)


async def test_slow_requests_of_a_hono_api_scale_it_out(
    hono_api: str, prometheus: Any, redis_db: Any, kube: Any, make_stack: Any
) -> None:
    async with httpx.AsyncClient(base_url=hono_api, timeout=10) as http:
        accepted = await http.post("/v1/messages", json={"to": "a@example.com"})
        assert accepted.status_code == 202 and accepted.json()["id"]
        assert (await http.post("/v1/messages", content=b"[1]")).status_code == 400
    prometheus.add_scrape_target(
        "hono-orders",
        hono_api.removeprefix("http://"),
        labels={"namespace": "shop", "pod": "orders-api-5d8c9b7f6-x2k4q"},
        wait_up=True,
    )
    settings = Settings(prometheus_url=prometheus.url, tick_seconds=1.0)
    loop = AutoscalingLoop(kube=kube, settings=settings, reader=SignalReader(timeout=5.0))
    for name in ("orders", "billing"):  # billing has no pods exporting: it reads as missing
        body = make_stack(name, redis_url=redis_db.url, api={"autoscaling": {"latency": LATENCY}})
        kube.add_stack(body, api=2)
        loop.track(body)

    stop = threading.Event()
    load = threading.Thread(target=_load, args=(hono_api, stop), daemon=True)
    load.start()
    queries = telemetry.AUTOSCALER_QUERIES.labels(source="prometheus")
    try:
        deadline = time.monotonic() + LOAD_SECONDS
        while kube.replicas("shop", "orders-api") == 2 and time.monotonic() < deadline:
            before = queries._value.get()
            await loop.tick()
            assert queries._value.get() - before == 1, "one query for both stacks"
            await asyncio.sleep(1.0)
    finally:
        stop.set()
        load.join(timeout=20)
        await loop.stop()
    assert kube.replicas("shop", "orders-api") > 2, kube.status
    status = kube.status[("shop", "orders")]["autoscaling"]["api"]
    assert status["p95Milliseconds"] > SLOW_MS * 0.9
    assert status["requestsPerSecond"] > 0
    assert kube.replicas("shop", "billing-api") == 2
    up = [e for e in kube.events if e["reason"] == "ScaledUp"]
    assert up and "Scaled the API up from 2 to" in up[0]["message"]
