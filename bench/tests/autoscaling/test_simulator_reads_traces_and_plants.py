"""The simulator reads any trace and any plant file, refuses bad ones by name, and is
deterministic (seeded noise included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.autoscaling.controllers import CONTROLLERS
from bench.autoscaling.plant import PlantConfig
from bench.autoscaling.simulate import simulate
from bench.autoscaling.trace import TraceError, read_trace


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


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"api_concurency": 4}, "api_concurency"),
        ({"api_concurrency": 0}, "api_concurrency"),
        ({"api_concurrency": 2.5}, "api_concurrency"),
        ({"api_service_time_ms": "fast"}, "api_service_time_ms"),
        ({"api_service_time_ms": float("nan")}, "api_service_time_ms"),
        ({"api_request_classes": [[0.5, 1.0]]}, "sum to 1"),
        ({"api_request_classes": [[1.0]]}, "api_request_classes"),
        ({"db_connections": True}, "db_connections"),
        ({"api_min_replicas": 5, "api_max_replicas": 3}, "api_min_replicas"),
        ({"target_drain_s": 90, "target_queue_wait_s": 60}, "target_drain_s"),
    ],
)
def test_a_bad_plant_names_the_setting(tmp_path: Path, data: dict[str, object], named: str) -> None:
    path = tmp_path / "plant.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=named):
        PlantConfig.from_file(path)


def test_a_plant_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "plant.json"
    path.write_text(json.dumps({"api_request_classes": [[0.9, 1], [0.1, 5]], "seed": 3}))
    plant = PlantConfig.from_file(path)
    assert plant.api_request_classes == ((0.9, 1.0), (0.1, 5.0))
    assert (plant.seed, plant.api_concurrency) == (3, 4)


def test_runs_are_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("t,api_rps,jobs_per_s\n0,300,50\n120,1500,250\n300,300,50\n420,300,50\n")
    plant = PlantConfig(api_cost_noise=0.3, api_startup_jitter_s=20, seed=5)
    trace = read_trace(path)

    def figures() -> dict[str, dict[str, float | int]]:
        return {
            name: simulate(trace, plant, cls(plant)).score.as_json()
            for name, cls in CONTROLLERS.items()
        }

    assert figures() == figures()
