"""The autoscaling loop writes replicas, status and Events only when something changed.

The API server and the signal reader are fakes (see conftest.py); the policy
is the real one. A tick is called directly, so no timing is involved.
"""

from __future__ import annotations

from typing import Any

from retention_operator import names
from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.settings import Settings

from .conftest import make_loop


async def test_a_backlog_scales_workers_up_with_the_autoscaler_field_manager(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a")
    kube.add_stack(body)
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    reader.backlog["a"] = 6000
    report = await loop.tick()
    assert report.replica_writes == 1
    ((manifest, manager),) = kube.applied
    assert manager == names.AUTOSCALER_FIELD_MANAGER
    assert manifest == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a-workers", "namespace": "shop"},
        "spec": {"replicas": manifest["spec"]["replicas"]},
    }
    assert manifest["spec"]["replicas"] > 1
    reasons = [e["reason"] for e in kube.events]
    assert reasons == ["ScaledUp"]
    assert kube.events[0]["message"].startswith("Scaled the workers up from 1 to")
    status = kube.status[("shop", "a")]
    assert status["backlog"] == 6000
    assert status["autoscaling"]["workers"]["lastDecision"] == "ScaleUp"
    assert set(kube.status_patches[0][2]) == {"autoscaling", "p95Milliseconds", "backlog"}


async def test_a_quiet_tick_writes_nothing(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a")
    kube.add_stack(body)
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    await loop.tick()
    before = kube.writes
    for _ in range(5):
        clock.advance(1.0)
        report = await loop.tick()
        assert (report.replica_writes, report.status_writes) == (0, 0)
    assert kube.writes == before


async def test_drifting_numbers_are_refreshed_at_most_every_30_seconds(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a")
    kube.add_stack(body)
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    await loop.tick()
    writes = []
    for n in range(40):
        clock.advance(1.0)
        reader.p95_ms["a"] = 50.0 + n % 3  # noise the policy ignores
        writes.append((await loop.tick()).status_writes)
    assert sum(writes) == 1


async def test_paused_stacks_get_no_writes(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    spec_paused = make_stack("a", paused=True)
    annotated = make_stack("b", annotations={names.ANNOTATION_AUTOSCALING_PAUSED: "true"})
    loop = make_loop(kube, reader, clock)
    for body in (spec_paused, annotated):
        kube.add_stack(body)
        loop.track(body)
        reader.backlog[body["metadata"]["name"]] = 100_000
        reader.p95_ms[body["metadata"]["name"]] = None
    for _ in range(3):
        await loop.tick()
        clock.advance(1.0)
    assert kube.writes == 0


async def test_disabled_autoscaling_only_keeps_replicas_within_bounds(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a", workers={"minReplicas": 2, "autoscaling": {"enabled": False}})
    kube.add_stack(body, workers=1)
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    reader.backlog["a"] = 100_000
    await loop.tick()
    assert kube.replicas("shop", "a-workers") == 2
    clock.advance(1.0)
    await loop.tick()
    assert kube.replicas("shop", "a-workers") == 2
    status = kube.status[("shop", "a")]["autoscaling"]["workers"]
    assert status["lastDecision"] == "Disabled"


async def test_missing_metrics_hold_replicas_and_warn_once(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a")
    kube.add_stack(body, api=4)
    loop = make_loop(kube, reader, clock)
    loop.track(body)
    reader.p95_ms["a"] = None
    for _ in range(5):
        await loop.tick()
        clock.advance(1.0)
    assert kube.replicas("shop", "a-api") == 4
    warnings = [e for e in kube.events if e["type"] == "Warning"]
    assert [e["reason"] for e in warnings] == ["MetricsUnavailable"]
    assert "prometheus down" in warnings[0]["message"]
    api = kube.status[("shop", "a")]["autoscaling"]["api"]
    assert "p95Milliseconds" not in api
    assert api["lastDecision"] == "Hold"
    assert "missing data never scales down" in api["lastReason"]
    # Back, then gone again: one more Warning.
    reader.p95_ms["a"] = 50.0
    await loop.tick()
    clock.advance(1.0)
    reader.p95_ms["a"] = None
    await loop.tick()
    assert len([e for e in kube.events if e["type"] == "Warning"]) == 2


async def test_no_prometheus_means_no_latency_signal(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    body = make_stack("a")
    kube.add_stack(body)
    loop = AutoscalingLoop(
        kube=kube, settings=Settings(prometheus_url=None), reader=reader, clock=clock
    )
    loop.track(body)
    await loop.tick()
    assert reader.latency_calls == [{}]
    (warning,) = [e for e in kube.events if e["type"] == "Warning"]
    assert "no Prometheus is configured" in warning["message"]


async def test_one_failing_stack_does_not_stop_the_others(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    loop = make_loop(kube, reader, clock)
    for name in ("bad", "good"):
        body = make_stack(name)
        kube.add_stack(body)
        loop.track(body)
        reader.backlog[name] = 6000
    kube.fail_apply_for.add("bad-workers")
    report = await loop.tick()
    assert report.errors == 1
    assert kube.replicas("shop", "good-workers") > 1
    assert kube.replicas("shop", "bad-workers") == 1


async def test_stacks_share_one_read_per_endpoint_and_one_list_per_namespace(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    loop = make_loop(kube, reader, clock)
    for n in range(50):
        body = make_stack(f"s{n}", namespace=f"ns{n % 5}")
        kube.add_stack(body)
        loop.track(body)
    await loop.tick()
    (queues,) = reader.queue_calls
    assert [len(refs) for refs in queues.values()] == [50]
    (latency,) = reader.latency_calls
    assert [len(keys) for keys in latency.values()] == [50]
    assert kube.lists == 5


async def test_forgotten_and_deleted_stacks_are_not_scaled(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    loop = make_loop(kube, reader, clock)
    body = make_stack("a")
    kube.add_stack(body)
    loop.track(body)
    loop.forget("shop", "a")
    deleting = make_stack("b")
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    loop.track(deleting)
    assert loop.tracked == []
    await loop.tick()
    assert kube.writes == 0


async def test_start_and_stop_run_ticks_in_a_task(
    kube: Any, reader: Any, clock: Any, make_stack: Any
) -> None:
    import asyncio

    loop = make_loop(kube, reader, clock)
    body = make_stack("a")
    kube.add_stack(body)
    loop.track(body)
    loop.start()
    for _ in range(50):
        if reader.queue_calls:
            break
        await asyncio.sleep(0.02)
    await loop.stop()
    assert reader.queue_calls
