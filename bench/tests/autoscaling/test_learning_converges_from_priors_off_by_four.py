"""From priors off by four either way, the policy's capacity (requests per second an API
replica serves within the p95 target) and throughput (jobs per second per worker) come
within 20 % of the plant's true values within 10 minutes of load well above half the
capacity, and stay there.

The plant is the default one under a steady 1,000 requests and 300 jobs per second (a
replica then runs near 0.8 of its capacity); the true values are what a load test of one
pod finds (:func:`bench.autoscaling.plant.load_test`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.autoscaling.controllers import Retention, View
from bench.autoscaling.plant import PlantConfig, load_test
from bench.autoscaling.simulate import simulate
from bench.autoscaling.trace import read_trace

WITHIN = 0.2
BY_SECONDS = 600.0
RUN_SECONDS = 2400


class _Watched(Retention):
    """The policy with its priors set, noting its estimates every tick."""

    def __init__(self, plant: PlantConfig, *, api_prior: float, worker_prior: float) -> None:
        super().__init__(plant)
        self.api_config = replace(self.api_config, requests_per_replica_per_second=api_prior)
        self.worker_config = replace(self.worker_config, jobs_per_worker_per_second=worker_prior)
        self.seen: list[tuple[float, float | None, float | None]] = []

    def act(self, view: View) -> tuple[int, int]:
        out = super().act(view)
        api = self.api_state.capacity if self.api_state else None
        workers = self.worker_state.capacity if self.worker_state else None
        self.seen.append((view.elapsed, api, workers))
        return out


@pytest.mark.parametrize("off", [4.0, 0.25], ids=["four-times-too-high", "four-times-too-low"])
def test_estimates_converge_and_stay(tmp_path: Path, off: float) -> None:
    plant = PlantConfig()
    truth = load_test(plant)
    assert truth.api_rps_at_target is not None
    path = tmp_path / "steady.csv"
    rows = "".join(f"{t},1000,300\n" for t in range(0, RUN_SECONDS, 60))
    path.write_text("t,api_rps,jobs_per_s\n" + rows)
    policy = _Watched(
        plant,
        api_prior=off * truth.api_rps_at_target,
        worker_prior=off * truth.worker_jobs_per_s,
    )
    simulate(read_trace(path), plant, policy)
    later = [(at, api, workers) for at, api, workers in policy.seen if at >= BY_SECONDS]
    for at, api, workers in later:
        assert api is not None and abs(api / truth.api_rps_at_target - 1) <= WITHIN, (at, api)
        assert workers is not None and abs(workers / truth.worker_jobs_per_s - 1) <= WITHIN, (
            at,
            workers,
        )
