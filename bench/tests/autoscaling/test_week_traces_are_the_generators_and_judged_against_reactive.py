"""The multi-day traces are exactly what ``python -m bench.autoscaling.weeks`` writes, and
the forecast's goal is judged against the reactive policy as the README states it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.autoscaling import weeks
from bench.autoscaling.forecast_table import Figures, goals


def test_the_traces_are_the_generators(tmp_path: Path) -> None:
    for name, week in weeks.TRACES.items():
        weeks.write(tmp_path / name, week, seed=7)
        stored = (weeks.HERE / name).read_text()
        assert (tmp_path / name).read_text() == stored, (
            f"rerun python -m bench.autoscaling.weeks ({name})"
        )
    learned = weeks.surges(weeks.TRACES["week-deviating.csv"])
    assert [known for _, _, known in learned] == [False, False, True, True, True, False, True]


REACTIVE = Figures(
    api_violation_s=600.0,
    wait_violation_s=0.0,
    api_replica_s=1000.0,
    worker_replica_s=1000.0,
    surge_api_violation_s=290.0,
    surge_wait_violation_s=0.0,
    odd_api_violation_s=55.0,
    odd_wait_violation_s=0.0,
    odd_api_replica_s=100.0,
    odd_worker_replica_s=100.0,
)


def test_the_goal_is_half_the_surge_violations_at_five_percent_more_cost() -> None:
    ours = replace(REACTIVE, surge_api_violation_s=145.0, api_replica_s=1050.0)
    assert goals(ours, REACTIVE) == []
    assert goals(replace(ours, surge_api_violation_s=150.0), REACTIVE) != []
    assert goals(replace(ours, worker_replica_s=1051.0), REACTIVE) != []
    # Where the reactive policy has none, at most 5 s.
    assert goals(replace(ours, surge_wait_violation_s=6.0), REACTIVE) != []


def test_the_odd_day_allows_no_more_violations_and_three_percent_more_cost() -> None:
    ours = replace(REACTIVE, surge_api_violation_s=0.0)
    assert goals(replace(ours, odd_api_replica_s=103.0), REACTIVE) == []
    assert goals(replace(ours, odd_api_replica_s=104.0), REACTIVE) != []
    assert goals(replace(ours, odd_api_violation_s=56.0), REACTIVE) != []
