"""KEDA-style polling holds a value between polls and falls back after failures."""

from __future__ import annotations

from bench.autoscaling.hpa import KedaConfig, KedaState, keda_metric, keda_poll


def test_value_holds_between_polls() -> None:
    config = KedaConfig(polling_interval_seconds=30)
    state = keda_poll(now=0.0, value=10.0, failed=False, config=config, state=KedaState())
    state = keda_poll(now=15.0, value=99.0, failed=False, config=config, state=state)
    assert keda_metric(state=state, config=config, target=1.0) == 10.0
    state = keda_poll(now=30.0, value=99.0, failed=False, config=config, state=state)
    assert keda_metric(state=state, config=config, target=1.0) == 99.0


def test_empty_results_count_as_zero_when_nulls_are_ignored() -> None:
    config = KedaConfig()
    state = keda_poll(now=0.0, value=None, failed=False, config=config, state=KedaState())
    assert keda_metric(state=state, config=config, target=1.0) == 0.0


def test_fallback_feeds_replicas_times_target_after_the_threshold() -> None:
    config = KedaConfig(polling_interval_seconds=1, failure_threshold=2, fallback_replicas=5)
    state = KedaState(value=10.0)
    for second in range(3):
        state = keda_poll(now=float(second), value=None, failed=True, config=config, state=state)
        if second < 2:
            assert keda_metric(state=state, config=config, target=3000.0) is None
    assert keda_metric(state=state, config=config, target=3000.0) == 15000.0
