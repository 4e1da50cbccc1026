"""The autoscaler's one latency query, against a real Prometheus scraping every second:
a jump in requests shows in the last scrape interval's rate (``rps_recent``, from
``irate``) within a few scrapes of its start (the test allows 10 s), while the minute's
rate (``rps``) still lags behind it; the policy's steady demand then takes the recent
rate (a surge)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

import retention_contract as contract
from harness.procs import free_port
from harness.services import PrometheusServer
from retention_operator.autoscaling.api import steady_demand
from retention_operator.autoscaling.signals import LatencyReading, LatencySource, SignalReader

pytestmark = [pytest.mark.services, pytest.mark.timeout(90)]

NAMESPACE, STACK = "team-s", "surging"
QUIET_RPS, SURGE_RPS = 20.0, 400.0
QUIET_S, SURGE_S = 8.0, 10.0  # bounded phases; Prometheus scrapes every second
STEP_S, READ_EVERY_S = 0.05, 0.5


@pytest.fixture
def requests() -> Iterator[tuple[Histogram, str]]:
    """An exporter on 127.0.0.1 with the API's request histogram; yields it and "host:port"."""
    registry = CollectorRegistry()
    histogram = Histogram(
        contract.METRIC_API_REQUEST_DURATION, "Request time, set by the test.", registry=registry
    )
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield histogram, f"127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


class _Load:
    """Observes requests at a set rate by the clock, so a late step catches up."""

    def __init__(self, histogram: Histogram) -> None:
        self.histogram = histogram
        self.done = 0.0
        self.owed = 0.0
        self.at = time.monotonic()

    def step(self, rps: float) -> None:
        now = time.monotonic()
        self.owed += rps * (now - self.at)
        self.at = now
        while self.done + 1 <= self.owed:
            self.histogram.observe(0.01)
            self.done += 1


async def _run(
    load: _Load,
    read: SignalReader,
    url: str,
    *,
    rps: float,
    seconds: float,
    until: Callable[[LatencyReading | None], bool] | None = None,
) -> tuple[LatencyReading | None, float]:
    """Serve ``rps`` for at most ``seconds``, reading every READ_EVERY_S; stop early once
    ``until`` holds for a reading. Returns the last reading and the seconds it took."""
    key = (NAMESPACE, STACK)
    start = time.monotonic()
    next_read, reading = start, None
    while time.monotonic() - start < seconds:
        load.step(rps)
        if time.monotonic() >= next_read:
            reading = (await read.read_latency({LatencySource(url=url): [key]})).get(key)
            next_read = time.monotonic() + READ_EVERY_S
            if until is not None and until(reading):
                break
        await asyncio.sleep(STEP_S)
    return reading, time.monotonic() - start


def _carries_the_surge(reading: LatencyReading | None) -> bool:
    recent = None if reading is None else reading.rps_recent
    return recent is not None and recent > 0.5 * SURGE_RPS


async def test_a_jump_shows_in_the_recent_rate_before_the_minute(
    prometheus: PrometheusServer, requests: tuple[Histogram, str]
) -> None:
    histogram, target = requests
    labels = {contract.LABEL_NAMESPACE: NAMESPACE, contract.LABEL_STACK: STACK}
    prometheus.add_scrape_target("latency-surge", target, labels, wait_up=True)
    reader, load = SignalReader(), _Load(histogram)
    try:
        quiet, _ = await _run(load, reader, prometheus.url, rps=QUIET_RPS, seconds=QUIET_S)
        assert quiet is not None and quiet.error is None, quiet
        assert quiet.rps is not None and quiet.rps_recent is not None, quiet
        # The last interval's rate is the load's at once. (The minute's is not yet: for a
        # series younger than the window, rate() divides what it saw by the whole minute.)
        assert quiet.rps_recent == pytest.approx(QUIET_RPS, rel=0.5), quiet

        surge, took = await _run(
            load, reader, prometheus.url, rps=SURGE_RPS, seconds=SURGE_S, until=_carries_the_surge
        )
        assert _carries_the_surge(surge), f"not in the recent rate after {took:.1f} s: {surge}"
        assert surge is not None and surge.rps is not None and surge.rps_recent is not None
        # The minute's mean lags behind, so the policy's steady demand is the recent rate.
        assert surge.rps < surge.rps_recent, surge
        assert steady_demand(rps=surge.rps, recent=surge.rps_recent) == surge.rps_recent
    finally:
        await reader.close()
