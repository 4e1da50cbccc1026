"""An API process with a capacity bound serves at most N requests at once, each after a fixed wait.

The real API (uvicorn, real Redis, PgBouncer and PostgreSQL) is started with
``RETENTION_API_CONCURRENCY`` and ``RETENTION_API_SERVICE_MS``; a burst of
``POST /v1/jobs`` sent at once shows the waves the bound makes, the API's own
latency histogram counts the wait for a slot (it is what the autoscaler acts
on), probes and scrapes pass at once while every slot is taken, and a second
process adds its own capacity. About 20 s, most of it starting three API processes.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import retention_contract as contract

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

SERVICE_MS = 500
CONCURRENCY = 2
BURST = 8
"""Four waves of two on one process: at least 2 s; two processes halve that."""

# asyncio's timers may fire up to about a millisecond before their deadline.
EARLY_S = 0.005


def _bounded(workloads) -> str:
    _, url = workloads.api(
        **{contract.ENV_API_SERVICE_MS: SERVICE_MS, contract.ENV_API_CONCURRENCY: CONCURRENCY}
    )
    return url


async def _burst(urls: list[str], count: int) -> list[float]:
    """Send ``count`` job posts at once, round robin over ``urls``; return each latency (s)."""

    async def one(client: httpx.AsyncClient, url: str, n: int) -> float:
        started = time.monotonic()
        response = await client.post(f"{url}/v1/jobs", json={"task": "burst", "payload": {"n": n}})
        assert response.status_code == 202, response.text
        return time.monotonic() - started

    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(*(one(client, urls[n % len(urls)], n) for n in range(count)))


def _posted_seconds(url: str) -> tuple[float, float]:
    """Count and sum of the API's own histogram for ``POST /v1/jobs`` answered 202."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != contract.METRIC_API_REQUEST_DURATION:
            continue
        for sample in family.samples:
            if sample.labels.get("method") == "POST" and sample.labels.get("status") == "202":
                values[sample.name.removeprefix(contract.METRIC_API_REQUEST_DURATION)] = (
                    sample.value
                )
    return values.get("_count", 0.0), values.get("_sum", 0.0)


def test_requests_beyond_the_limit_wait_their_turn_while_probes_pass_at_once(
    standalone_backend, workloads
):
    url = _bounded(workloads)

    async def scenario() -> tuple[list[float], list[float]]:
        burst = asyncio.ensure_future(_burst([url], BURST))
        await asyncio.sleep(0.2)  # every slot is now held, with six requests queued
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            probes = []
            for path in ("/healthz", "/readyz", "/metrics"):
                started = time.monotonic()
                assert (await client.get(path)).status_code == 200
                probes.append(time.monotonic() - started)
        assert not burst.done()
        return await burst, probes

    latencies, probes = asyncio.run(scenario())
    # Probes and scrapes are not queued: behind the burst they would wait seconds.
    assert max(probes) < SERVICE_MS / 1000, probes
    # With two slots, each held for at least the service time, the k-th answer
    # (from 0) cannot come before wave k // 2 + 1 has been served.
    latencies.sort()
    floors = [(k // CONCURRENCY + 1) * SERVICE_MS / 1000 for k in range(BURST)]
    for latency, floor in zip(latencies, floors, strict=True):
        assert latency >= floor - EARLY_S, (latencies, floors)
    count, total = _posted_seconds(url)
    assert count == BURST
    # The server's own durations (what the autoscaler acts on) include the wait
    # for a slot, not only the service time.
    assert total >= sum(floors) - BURST * EARLY_S, (total, sum(floors))


def test_a_second_process_adds_its_own_capacity(standalone_backend, workloads):
    urls = [_bounded(workloads), _bounded(workloads)]
    started = time.monotonic()
    latencies = asyncio.run(_burst(urls, BURST))
    elapsed = time.monotonic() - started
    # Two waves on each process instead of four on one: under the one-process floor.
    one_process_floor = BURST // CONCURRENCY * SERVICE_MS / 1000
    assert min(latencies) >= SERVICE_MS / 1000 - EARLY_S
    assert elapsed < one_process_floor, (elapsed, latencies)
