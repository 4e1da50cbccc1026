"""The closed loop's smoke run: one step of load on a fresh stack, for the test tiers.

Not a measurement: it proves that the benchmark's parts still work together on
real pods (the stack, Locust's shape, the enqueuer, the sampler, the jobs' rows)
and that the arm's autoscaler scales at least once. 30 s at a load two API pods
and one worker carry, then 120 s at about three times what they carry.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from bench.autoscaling.trace import read_trace
from bench.closedloop import arms
from bench.closedloop.plant import Cluster
from bench.closedloop.run import one_arm
from bench.closedloop.schedule import Load, compressed

BASE = (10.0, 3.0)
STEP = (60.0, 30.0)
STEP_AT_S = 30
END_S = 150
LOAD = Load(compress=1, api_scale=1, jobs_scale=1)
NOMINAL_RPS_PER_POD = 16.0
"""What KEDA's target is set from in the smoke run (the benchmark measures it instead)."""


def write_step_trace(path: Path) -> Path:
    """The smoke trace, in ``bench/autoscaling/traces``' format."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("t", "api_rps", "jobs_per_s"))
        for t in range(0, END_S, 5):
            writer.writerow((t, *(BASE if t < STEP_AT_S else STEP)))
    return path


def run(shared: Cluster, *, arm: str, run_dir: Path) -> dict[str, Any]:
    """One arm through the step; its figures (see :func:`bench.closedloop.figures.figures`)."""
    trace_path = write_step_trace(run_dir / "step.csv")
    return one_arm(
        shared,
        arms.Plant(),
        arm=arm,
        trace=compressed(read_trace(trace_path), LOAD),
        trace_path=trace_path,
        load=LOAD,
        user_rps=1.0,
        api_rps_per_pod=NOMINAL_RPS_PER_POD,
        run_dir=run_dir,
    )
