"""KEDA's metrics server reads the scaler on every HPA request, unless useCachedMetrics;
its own loop only moves between 0 and 1 (scale_handler.go, scale_scaledobjects.go)."""

from __future__ import annotations

from bench.autoscaling.hpa import Scale
from bench.autoscaling.keda import ScaledObject, ScaledObjectSpec, Trigger


def _scaled(*, cached: bool, minimum: int = 1) -> ScaledObject:
    spec = ScaledObjectSpec(
        min_replica_count=minimum,
        max_replica_count=50,
        triggers=(Trigger("lag", target=100.0),),
        use_cached_metrics=cached,
    )
    return ScaledObject(spec)


def _scale(replicas: int) -> Scale:
    return Scale(spec_replicas=replicas, status_replicas=replicas, ready_replicas=replicas)


def test_without_the_cache_every_sync_reads_the_scaler() -> None:
    keda = _scaled(cached=False)
    lag = {"lag": 100.0}
    assert keda.poll(now=0.0, replicas=1, read=lag.get) is None
    lag["lag"] = 400.0
    # No poll in between: the HPA still sees the new lag at its next sync.
    assert keda.sync(now=15.0, scale=_scale(1), read=lag.get) == 4


def test_with_the_cache_a_sync_sees_the_last_poll() -> None:
    keda = _scaled(cached=True)
    lag = {"lag": 100.0}
    keda.poll(now=0.0, replicas=1, read=lag.get)
    lag["lag"] = 400.0
    assert keda.sync(now=15.0, scale=_scale(1), read=lag.get) == 1
    keda.poll(now=30.0, replicas=1, read=lag.get)
    assert keda.sync(now=30.0, scale=_scale(1), read=lag.get) == 4


def test_the_loop_activates_from_zero_and_deactivates_after_the_cooldown() -> None:
    keda = _scaled(cached=False, minimum=0)
    lag = {"lag": 0.0}
    assert keda.poll(now=0.0, replicas=0, read=lag.get) is None
    assert keda.sync(now=0.0, scale=_scale(0), read=lag.get) == 0  # the HPA is disabled at 0
    lag["lag"] = 5.0
    assert keda.poll(now=30.0, replicas=0, read=lag.get) == 1
    lag["lag"] = 0.0
    assert keda.poll(now=60.0, replicas=1, read=lag.get) is None  # cooling down
    assert keda.poll(now=331.0, replicas=1, read=lag.get) == 0


def test_a_failed_read_holds_the_hpa() -> None:
    keda = _scaled(cached=False)
    assert keda.sync(now=0.0, scale=_scale(3), read=lambda name: None) == 3
