"""The closed loop replays a trace compressed in time and scaled: the same steps, sooner."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.autoscaling.trace import read_trace
from bench.closedloop.schedule import Load, compressed, rate_at, steps, users_at

TRACES = Path(__file__).resolve().parents[2] / "autoscaling" / "traces"


def test_the_step_trace_steps_up_and_down_at_a_quarter_of_its_times() -> None:
    trace = compressed(read_trace(TRACES / "step.csv"), Load(compress=4, api_scale=0.05))
    assert trace.api_rps.end == 900
    # The 5x step at 900 s and back at 2700 s of the trace.
    assert steps(trace.api_rps) == [225, 675]
    assert 13 < rate_at(trace.api_rps, 100) < 17
    assert 70 < rate_at(trace.api_rps, 300) < 80
    assert rate_at(trace.api_rps, 900) == 0


def test_users_offer_the_rate_at_their_own_rate_each() -> None:
    trace = compressed(read_trace(TRACES / "step.csv"), Load(compress=4, api_scale=0.05))
    rate = rate_at(trace.api_rps, 300)
    assert users_at(trace.api_rps, 300, user_rps=1.0) * 1.0 >= rate
    assert (users_at(trace.api_rps, 300, user_rps=1.0) - 1) * 1.0 < rate
    assert users_at(trace.api_rps, -1, user_rps=1.0) == 0


def test_a_load_that_is_not_positive_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="compress"):
        Load(compress=0)
    with pytest.raises(ValueError, match="jobs_scale"):
        Load(jobs_scale=-1)
