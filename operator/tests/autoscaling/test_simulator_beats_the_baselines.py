"""The simulator reads any trace, is deterministic, and retention meets the issue's targets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# Appended, not prepended: the repository root holds a folder named `operator`,
# which must not shadow the standard library module.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from bench.autoscaling.controllers import CONTROLLERS  # noqa: E402
from bench.autoscaling.plant import PlantConfig  # noqa: E402
from bench.autoscaling.simulate import simulate  # noqa: E402
from bench.autoscaling.trace import TraceError, read_trace  # noqa: E402

# The three public traces, kept in the repository so this test never skips.
PUBLIC = ROOT / "bench" / "autoscaling" / "traces"


def _figures(path: Path) -> dict[str, dict[str, float | int]]:
    trace, plant = read_trace(path), PlantConfig()
    return {
        name: simulate(trace, plant, cls(plant)).score.as_json()
        for name, cls in CONTROLLERS.items()
    }


def test_traces_of_any_step_and_order_are_read(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("t,api_rps,jobs_per_s,extra\n7,100,5,x\n0,200,10,y\n\n")
    trace = read_trace(path)
    assert (trace.start, trace.end) == (0.0, 14.0)
    assert trace.api_rps.integral(0, 14) == 200 * 7 + 100 * 7
    assert trace.jobs_per_s.integral(6.5, 7.5) == 7.5


def test_a_bad_trace_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("t,api_rps\n0,1\n")
    with pytest.raises(TraceError, match="jobs_per_s"):
        read_trace(path)


def test_runs_are_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("t,api_rps,jobs_per_s\n0,300,50\n120,1500,250\n300,300,50\n420,300,50\n")
    assert _figures(path) == _figures(path)


@pytest.mark.parametrize("name", ["step", "ramp", "diurnal"])
def test_retention_meets_the_targets_on_the_public_traces(name: str) -> None:
    path = PUBLIC / f"{name}.csv"
    figures = _figures(path)
    ours, hpa, keda = figures["retention"], figures["hpa"], figures["keda"]
    assert ours["api_slo_violation_s"] <= 0.5 * hpa["api_slo_violation_s"]
    assert ours["api_replica_s"] <= 1.1 * hpa["api_replica_s"]
    assert ours["queue_wait_violation_s"] <= 0.5 * keda["queue_wait_violation_s"]
    assert ours["worker_replica_s"] <= 1.1 * keda["worker_replica_s"]
    assert ours["scale_direction_changes"] <= hpa["scale_direction_changes"]
