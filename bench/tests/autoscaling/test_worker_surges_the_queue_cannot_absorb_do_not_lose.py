"""Surges of jobs the queue cannot take while workers start (200 ms jobs: the fleet sized
for the base falls minutes behind in a 5x surge) are met with workers kept for the next
one, and the workers meet the goal against every baseline. Whether the queue can take a
surge is judged from the wait it would build (``workers.queue_absorbs``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.autoscaling.controllers import JUDGED
from bench.autoscaling.judge import judge
from bench.autoscaling.plant import PlantConfig
from bench.autoscaling.simulate import simulate
from bench.autoscaling.trace import read_trace
from retention_operator.autoscaling.workers import queue_absorbs

HERE = Path(__file__).resolve().parents[2] / "autoscaling"


def test_the_queue_absorbs_a_surge_only_if_it_waits_within_the_target() -> None:
    # Default plant: 50 jobs/s on one worker of 100/s; a 5x surge (250/s) builds 150/s
    # for the start-up: 5,250 jobs, 52 s at 100/s, within 60 s.
    assert queue_absorbs(peak=250, base=50, throughput=100, min_replicas=1, target_wait=60)
    # 200 ms jobs: 25 jobs/s on five workers of 5/s; a 5x surge is 140 s behind.
    assert not queue_absorbs(peak=125, base=25, throughput=5, min_replicas=1, target_wait=60)
    # Nothing seen yet: nothing to keep.
    assert queue_absorbs(peak=0, base=None, throughput=5, min_replicas=1, target_wait=60)


@pytest.mark.parametrize("trace", ["surges-fast", "surges-regular"])
def test_heavy_job_surges_meet_the_goal_for_the_workers(trace: str) -> None:
    plant = PlantConfig.from_file(HERE / "plants" / "heavy-jobs.json")
    surges = read_trace(HERE / "traces" / "surges" / f"{trace}.csv")
    figures = {
        policy: simulate(surges, plant, cls(plant)).score.as_json()
        for policy, cls in JUDGED.items()
    }
    misses = [miss for v in judge(figures) if v.component == "workers" for miss in v.misses()]
    assert misses == []
