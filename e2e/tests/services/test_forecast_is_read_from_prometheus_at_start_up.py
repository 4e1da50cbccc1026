"""The forecast's history comes from a real Prometheus: four days of a stack's API request
counter, backfilled into a TSDB block with ``promtool tsdb create-blocks-from
openmetrics`` (Debian's Prometheus 2.42), are read at start-up by the operator's own
range queries (``SignalReader.read_history``, chunks of a week, a point a minute); the
forecast learns the daily surge from them and the policy brings its replicas in before
the surge comes, where the reactive policy would not."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import retention_contract as contract
from harness.procs import free_port
from harness.prometheus_server import PrometheusServer
from harness.service_base import require_binary
from retention_operator.autoscaling import forecast
from retention_operator.autoscaling.config import ApiPolicyConfig
from retention_operator.autoscaling.policy import decide_api
from retention_operator.autoscaling.promql import HistogramSeries
from retention_operator.autoscaling.samples import ApiSample, Replicas, SignalHistory
from retention_operator.autoscaling.signals import LatencySource, SignalReader
from retention_operator.autoscaling.state import PolicyState

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

NAMESPACE, STACK = "team-f", "daily"
DAYS = 4
SCRAPE_S = 15
BASE_RPS, SURGE_RPS = 100.0, 1500.0
SURGE_MINUTES = 15


def _openmetrics(path: Path, *, now: float) -> int:
    """The request counter of the stack for :data:`DAYS` days before ``now``, a sample
    every 15 s: :data:`BASE_RPS`, and :data:`SURGE_RPS` for 15 minutes every day from the
    minute after ``now``'s (so the surge is due within a minute or two of ``now``)."""
    surge_from = (int(now % forecast.DAY_SECONDS) // 60 + 1) % forecast.DAY_MINUTES
    name = f"{contract.METRIC_API_REQUEST_DURATION}_count"
    labels = f'{contract.LABEL_NAMESPACE}="{NAMESPACE}",{contract.LABEL_STACK}="{STACK}"'
    lines, total = [], 0.0
    start = int(now - DAYS * forecast.DAY_SECONDS) // SCRAPE_S * SCRAPE_S
    # The last sample a few minutes back: the head block stays empty, as at a restart.
    for at in range(start, int(now) - 300, SCRAPE_S):
        minute = (at % int(forecast.DAY_SECONDS)) // 60
        surging = (minute - surge_from) % forecast.DAY_MINUTES < SURGE_MINUTES
        total += (SURGE_RPS if surging else BASE_RPS) * SCRAPE_S
        lines.append(f"{name}{{{labels}}} {total:.0f} {at}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return at


@pytest.fixture
def backfilled(tmp_path: Path) -> Iterator[tuple[PrometheusServer, int]]:
    """A Prometheus whose TSDB holds the backfilled blocks, started on them, and the
    time of the last sample."""
    now = time.time()
    source = tmp_path / "history.om"
    last = _openmetrics(source, now=now)
    server = PrometheusServer(port=free_port(), root=tmp_path / "prometheus", log_dir=tmp_path)
    data = server.root / "data"
    data.mkdir(parents=True)
    done = subprocess.run(
        [
            require_binary("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--quiet",
            str(source),
            str(data),
        ],
        capture_output=True,
        text=True,
        # Seconds here; minutes on a loaded machine.
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Opening the 48 two-hour blocks takes longer than an empty TSDB.
    server.start(timeout=90)
    yield server, last
    server.stop()


def test_the_history_is_read_at_start_up_and_the_surge_met_ahead(
    backfilled: tuple[PrometheusServer, int],
) -> None:
    server, last = backfilled
    now = time.time()
    source = LatencySource(url=server.url, query=HistogramSeries())
    reader = SignalReader(timeout=3.0)
    try:
        history = asyncio.run(
            reader.read_history(
                {source: [(NAMESPACE, STACK)]},
                start=now - forecast.KEPT_DAYS * forecast.DAY_SECONDS,
                # Up to the last sample: a point after it sees part of a window, which
                # Prometheus's extrapolation reads lower (a live series has no such end).
                end=last,
            )
        )
    finally:
        asyncio.run(reader.close())
    points = history[(NAMESPACE, STACK)]
    # A point a minute over the four days (the head of the first minute aside).
    assert len(points) >= DAYS * forecast.DAY_MINUTES - 10
    rates = sorted(value for _, value in points)
    assert rates[len(rates) // 2] == pytest.approx(BASE_RPS, rel=0.02)
    assert rates[-1] == pytest.approx(SURGE_RPS, rel=0.02)

    learned = forecast.learn(forecast.Forecast(), points)
    assert forecast.days_known(learned) >= DAYS - 1
    assert forecast.trust(learned) == 1.0
    error = forecast.error_last_day(learned)
    assert error is not None and error < 0.05

    # Used: at the next tick, with 100 req/s now, replicas for the surge that is due.
    samples: SignalHistory[ApiSample] = SignalHistory()
    samples.append(ApiSample(at=now - 5, p95_ms=60.0, rps=BASE_RPS, rps_recent=BASE_RPS))
    config = ApiPolicyConfig(max_replicas=40, requests_per_replica_per_second=100.0)

    def desired(state: PolicyState, config: ApiPolicyConfig) -> int:
        return decide_api(
            now=now,
            replicas=Replicas(desired=2, ready=2),
            history=samples,
            config=config,
            state=state,
        ).desired

    reactive = ApiPolicyConfig(
        max_replicas=40, requests_per_replica_per_second=100.0, forecast=False
    )
    assert desired(PolicyState(), reactive) <= 2
    assert desired(PolicyState(forecast=learned), config) >= SURGE_RPS / 100.0
