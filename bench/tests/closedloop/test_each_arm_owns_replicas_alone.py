"""Each arm's scaling is configured as the issue and a careful user set it, and only one
controller owns spec.replicas: the operator's autoscaler is off in the keda and hpa arms."""

from __future__ import annotations

from typing import Any

from bench.closedloop import arms


def _stack(arm: str) -> dict[str, Any]:
    return arms.stack(
        arms.Plant(),
        arm=arm,
        namespace=f"cl-{arm}",
        image="w:1",
        pgbouncer_image="p:1",
        redis_url="redis://10.0.0.1:6379/0",
        database={"host": "10.0.0.1", "port": 5432, "user": "u", "name": "d"},
        database_secret="cl-postgres",  # noqa: S106 - a Secret's name
        prometheus_url="http://10.0.0.1:9090",
    )


def test_only_the_retention_arm_has_the_operators_autoscaling_on() -> None:
    for arm in arms.ARMS:
        spec = _stack(arm)["spec"]
        on = arm == "retention"
        assert spec["api"]["autoscaling"]["enabled"] is on
        assert spec["workers"]["autoscaling"]["enabled"] is on


def test_the_stacks_differ_in_nothing_but_autoscaling_enabled() -> None:
    def without(arm: str) -> dict[str, Any]:
        spec: dict[str, Any] = _stack(arm)["spec"]
        for component in ("api", "workers"):
            spec[component]["autoscaling"].pop("enabled")
        return spec

    assert without("retention") == without("keda") == without("hpa")


def test_the_hpa_arm_scales_both_deployments_on_cpu_at_70_percent_within_the_stacks_bounds() -> (
    None
):
    plant = arms.Plant()
    api, workers = arms.hpas(plant, namespace="cl-hpa")
    for hpa, low, high in (
        (api, plant.api_min, plant.api_max),
        (workers, plant.workers_min, plant.workers_max),
    ):
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (low, high)
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"] == {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 70},
        }
        assert "behavior" not in hpa["spec"]


def test_keda_scales_workers_on_lag_and_the_api_on_its_rate_per_pod_with_default_timing() -> None:
    plant = arms.Plant()
    auth, api, workers = arms.scaled_objects(
        plant,
        namespace="cl-keda",
        stream="{cl-keda/cl}:jobs",
        redis_address="10.0.0.1:6379",
        prometheus_url="http://10.0.0.1:9090",
        api_rps_per_pod=16.0,
    )
    (lag,) = workers["spec"]["triggers"]
    assert lag["type"] == "redis-streams"
    assert lag["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["secretTargetRef"][0]["name"] == arms.REDIS_SECRET
    # Half the 20 s wait target's worth of one worker's 10 jobs/s.
    assert lag["metadata"]["lagCount"] == "100"
    assert lag["metadata"]["consumerGroup"] == "workers"
    (rate,) = api["spec"]["triggers"]
    assert rate["type"] == "prometheus"
    assert rate["metadata"]["threshold"] == "12.8"
    assert 'namespace="cl-keda",stack="cl"' in rate["metadata"]["query"]
    for scaled in (api, workers):
        # Defaults: polling, cooldown and the HPA's behaviour are left as KEDA sets them.
        assert set(scaled["spec"]) == {
            "scaleTargetRef",
            "minReplicaCount",
            "maxReplicaCount",
            "triggers",
        }
