"""With the forecast on, the policy brings in the replicas of a surge the daily shape
expects within the lead, before the demand shows it; with ``forecast`` off it decides on
the demand alone and keeps no forecast, from the first tick it is off."""

from __future__ import annotations

from retention_operator.autoscaling import forecast, report
from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.forecast import DAY_MINUTES, DAY_SECONDS, Forecast
from retention_operator.autoscaling.policy import decide_api, decide_workers
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.state import PolicyState

SURGE_MINUTE = 1200  # 20:00


def _shape(minute: int, *, base: float, peak: float) -> float:
    return peak if SURGE_MINUTE <= minute < SURGE_MINUTE + 15 else base


def _learned(*, base: float, peak: float, until_minute: int) -> Forecast:
    """Four days of the shape, then day 4 until ``until_minute``, a sample a minute."""
    model = Forecast()
    for day in range(5):
        for minute in range(DAY_MINUTES if day < 4 else until_minute):
            value = _shape(minute, base=base, peak=peak)
            model = forecast.observe(model, at=day * DAY_SECONDS + minute * 60 + 30, value=value)
    return model


NOW = 4 * DAY_SECONDS + (SURGE_MINUTE - 2) * 60 + 40  # 19:58:40 on day 4


def _api(config: ApiPolicyConfig, model: Forecast) -> tuple[int, PolicyState, dict[str, object]]:
    history: SignalHistory[ApiSample] = SignalHistory()
    history.append(ApiSample(at=NOW - 5, p95_ms=80.0, rps=600.0, rps_recent=600.0))
    state = PolicyState(capacity=150.0, forecast=model, ready=5, ready_since=NOW - 600)
    decision = decide_api(
        now=NOW, replicas=Replicas(desired=5, ready=5), history=history, config=config, state=state
    )
    status = report.component_status(decision=decision, last_scale_time=None, metrics={})
    return decision.desired, decision.state, status


def test_the_api_is_scaled_to_the_expected_surge_before_it_comes() -> None:
    model = _learned(base=600.0, peak=1800.0, until_minute=SURGE_MINUTE - 2)
    ahead, state, status = _api(ApiPolicyConfig(max_replicas=50), model)
    reactive, off, off_status = _api(ApiPolicyConfig(max_replicas=50, forecast=False), model)
    assert reactive <= 5
    assert ahead >= 12  # 1800 req/s at 150 per replica
    assert state.forecast is not None
    assert status["forecast"] == {
        "inUse": True,
        "trust": 1.0,
        "daysLearned": 4,
        "errorLastDay": 0.0,
    }
    # Off: the forecast is dropped from the state on the first tick, and the status
    # patch removes the block (None deletes a key in a merge patch).
    assert off.forecast is None
    assert off_status["forecast"] is None


def test_the_workers_are_scaled_to_the_expected_arrivals_before_they_come() -> None:
    model = _learned(base=100.0, peak=600.0, until_minute=SURGE_MINUTE - 2)
    history: SignalHistory[WorkerSample] = SignalHistory()
    for step in range(4):
        at = NOW - 15 + 5 * step
        history.append(
            WorkerSample(at=at, backlog=0.0, arrivals_total=100.0 * at, completed_total=100.0 * at)
        )

    def desired(config: WorkerPolicyConfig) -> int:
        state = PolicyState(forecast=model, ready=2, ready_since=NOW - 600)
        return decide_workers(
            now=NOW,
            replicas=Replicas(desired=2, ready=2),
            history=history,
            config=config,
            state=state,
        ).desired

    assert desired(WorkerPolicyConfig(forecast=False)) <= 2
    assert desired(WorkerPolicyConfig()) >= 6  # 600 jobs/s at 100 per worker
