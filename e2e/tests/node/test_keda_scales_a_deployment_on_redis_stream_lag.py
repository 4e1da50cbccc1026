"""KEDA, built from its Go module, scales a real Deployment out and back in on a stream's lag.

The competitor a careful user installs, run for real: KEDA's operator and
metrics API server (``external.metrics.k8s.io`` behind the aggregation layer)
as host processes with upstream's RBAC, a ScaledObject with a redis-streams
trigger on ``lagCount`` against a real Redis, the HPA KEDA makes for it run by
kube-controller-manager's own controller, and the Deployment's pods started by
the real node's kubelet. Not in ``make test``: ``make autoscalers-test`` builds
KEDA into the binary cache first (tens of minutes cold on two busy cores).

The ScaledObject polls every 5 s and its HPA scales in without a window so the
test takes a minute, not the default five; the benchmark's KEDA arm keeps the
defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import autoscalers, images
from harness.controlplane import ControlPlane, start_control_plane
from harness.demo import restricted_namespace
from harness.procs import wait_until
from harness.redis_servers import start_redis

pytestmark = [pytest.mark.node, pytest.mark.autoscalers, pytest.mark.timeout(900)]

NAMESPACE = "keda-lag"
NAME = "consumer"
STREAM = "jobs"
GROUP = "workers"
LAG_PER_REPLICA = 10
MAX_REPLICAS = 4


def _apply(cp: ControlPlane, name: str, docs: list[dict[str, Any]]) -> None:
    path = cp.run_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    cp.kubectl("apply", "-f", str(path))


def _deployment(image: str) -> dict[str, Any]:
    container = {
        "name": NAME,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
            },
        },
    }


def _scaled_object(redis_address: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"name": NAME},
            "minReplicaCount": 1,
            "maxReplicaCount": MAX_REPLICAS,
            "pollingInterval": 5,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}
                }
            },
            "triggers": [
                {
                    "type": "redis-streams",
                    "metadata": {
                        "address": redis_address,
                        "stream": STREAM,
                        "consumerGroup": GROUP,
                        "lagCount": str(LAG_PER_REPLICA),
                    },
                }
            ],
        },
    }


def _replicas(cp: ControlPlane) -> tuple[int, int]:
    out = cp.kubectl("get", "deployment", NAME, "-n", NAMESPACE, "-o", "json")
    deployment = json.loads(out)
    return deployment["spec"]["replicas"], deployment["status"].get("readyReplicas", 0)


def test_a_stream_lag_scales_real_pods_out_and_the_drained_lag_scales_them_in(
    tmp_path: Path,
) -> None:
    bin_dir = autoscalers.build("keda")
    pause = images.build(["pause"])["pause"].ref
    redis = start_redis(base_dir=tmp_path / "redis")
    cp = start_control_plane(tmp_path / "cluster", real_node=True)
    try:
        keda = autoscalers.start_keda(cp, bin_dir)
        assert keda.version.startswith("v2.")
        group = json.loads(cp.kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"))
        assert group["groupVersion"] == "external.metrics.k8s.io/v1beta1"

        client = redis.client()
        client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        _apply(cp, "namespace", [restricted_namespace(NAMESPACE)])
        _apply(cp, "consumer", [_deployment(pause)])
        wait_until(lambda: _replicas(cp) == (1, 1), what="one consumer pod ready", timeout=180)
        _apply(cp, "scaledobject", [_scaled_object(f"{redis.host}:{redis.port}")])

        def hpa() -> dict[str, Any]:
            out = cp.kubectl(
                "get", "hpa", f"keda-hpa-{NAME}", "-n", NAMESPACE, "-o", "json", check=False
            )
            return json.loads(out) if out.strip() else {}

        wait_until(lambda: bool(hpa()), what="the HPA KEDA makes for the ScaledObject", timeout=90)
        owner = hpa()["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("ScaledObject", NAME)

        # 35 jobs nobody reads: lag 35, four replicas at 10 per replica.
        for n in range(35):
            client.xadd(STREAM, {"n": str(n)})
        wait_until(
            lambda: _replicas(cp) == (MAX_REPLICAS, MAX_REPLICAS),
            what=f"{MAX_REPLICAS} consumer pods ready on a lag of 35",
            timeout=180,
        )
        metric = hpa()["spec"]["metrics"][0]["external"]["metric"]["name"]
        raw = cp.kubectl(
            "get",
            "--raw",
            f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/{metric}"
            f"?labelSelector=scaledobject.keda.sh%2Fname%3D{NAME}",
        )
        assert json.loads(raw)["items"][0]["value"] == "35"

        # Read and acknowledge every entry: lag 0, back to the minimum.
        read: Any = client.xreadgroup(GROUP, "c1", {STREAM: ">"}, count=100)
        ids = [entry_id for _, entries in read for entry_id, _ in entries]
        assert len(ids) == 35
        client.xack(STREAM, GROUP, *ids)
        wait_until(lambda: _replicas(cp) == (1, 1), what="back to one consumer pod", timeout=180)
    finally:
        cp.stop()
        redis.stop()
