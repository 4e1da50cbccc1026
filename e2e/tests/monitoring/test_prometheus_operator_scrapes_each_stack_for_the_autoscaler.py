"""Prometheus Operator turns each stack's PodMonitor into scraping; the autoscaler reads it.

The real Prometheus Operator (built from its Go module, ``make
monitoring-test``) runs against the local control plane and turns a
``Prometheus`` object and the stacks' PodMonitors into the configuration it
writes to the Secret ``prometheus-<name>``; its config reloader fills in the
pod's placeholders as the pod's init container would, and the harness's real
Prometheus loads the result and discovers the stacks' pods through the API
server (a Prometheus built from its module: Debian's leaves Kubernetes
discovery out). No kubelet runs here (KWOK plays the nodes), so each API pod is stood
in for by a process on the pod's own IP and port serving the contract's
latency histogram (``harness.api_exporter``). One stack's stand-in exports the
``namespace`` and ``stack`` labels as the project's API does, the other's
exports none, as an application of one's own might: both must come out per
stack, from Kubernetes. Then the operator's own latency query answers per
stack, and the session's operator, pointed at this Prometheus, writes each
stack's p95 into its status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from harness.api_exporter import ApiExporter
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.procs import free_port
from harness.prometheus_operator import (
    PrometheusOperator,
    generated_config,
    install_crds,
    prometheus_binary,
    prometheus_object,
    prometheus_version,
    rendered_config,
    uninstall_crds,
)
from harness.prometheus_server import PrometheusServer, start_prometheus
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, get_stack, is_ready, stack_manifest, wait_for
from retention_operator.autoscaling.promql import latency_query, parse_latency

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus_operator, pytest.mark.timeout(300)]

# Stack -> (seconds every request takes, whether its histogram names the stack itself).
STACKS = {"orders": (0.05, True), "billing": (0.4, False)}


@pytest.fixture
def crds(control_plane: ControlPlane) -> Iterator[None]:
    install_crds(control_plane)
    yield
    uninstall_crds(control_plane)


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus of the harness's for Prometheus Operator's configuration alone.

    Built from Prometheus's module (Debian's has no Kubernetes discovery)."""
    server = start_prometheus(
        base_dir=tmp_path, name="prometheus-operated", binary=str(prometheus_binary())
    )
    yield server
    server.stop()


def _api_pods(core: client.CoreV1Api, namespace: str, stack: str) -> list[Any]:
    selector = f"retention.dev/stack={stack},app.kubernetes.io/component=api"
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [p for p in pods if p.status.pod_ip]


def _up(prometheus: PrometheusServer, namespace: str, stack: str) -> int:
    job = f"podMonitor/{namespace}/{stack}/0"
    return sum(
        1 for t in prometheus.targets() if t.get("scrapePool") == job and t["health"] == "up"
    )


def _targets(prometheus: PrometheusServer) -> str:
    """The active targets, one line each, for a failure message."""
    return "\n".join(
        f"{t.get('scrapePool')} {t.get('scrapeUrl')} {t.get('health')} {t.get('lastError')}"
        for t in prometheus.targets()
    )


def test_each_stacks_api_is_scraped_and_its_latency_read(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    crds: None,
    own_prometheus: PrometheusServer,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
    tmp_path: Path,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    port = free_port()
    for name in STACKS:
        api = {
            "port": port,
            "minReplicas": 2,
            "maxReplicas": 2,
            "autoscaling": {"prometheusUrl": own_prometheus.url},
        }
        apply_ok(
            control_plane,
            stack_manifest(name, namespace, postgres=postgres, redis=redis_standalone, api=api),
        )
    for name in STACKS:
        wait_for(lambda n=name: is_ready(get_stack(custom, namespace, n)), timeout=90, what=name)

    promop = PrometheusOperator(control_plane, tmp_path / "promop", namespaces=[namespace])
    promop.start()
    exporters: list[ApiExporter] = []
    try:
        apply_ok(
            control_plane,
            prometheus_object(
                "stacks",
                namespace,
                cp=control_plane,
                prometheus_version=prometheus_version(prometheus_binary()),
            ),
        )
        wait_for(
            lambda: (
                (c := generated_config(core, namespace, "stacks"))
                and {f"podMonitor/{namespace}/{s}/0" for s in STACKS}
                <= {j["job_name"] for j in c.get("scrape_configs") or []}
                and c
            ),
            timeout=60,
            what="Prometheus Operator's configuration with both PodMonitors",
        )
        for name, (seconds, labelled) in STACKS.items():
            for pod in _api_pods(core, namespace, name):
                exporters.append(
                    ApiExporter(
                        namespace=namespace,
                        stack=name,
                        seconds=seconds,
                        per_second=50,
                        host=pod.status.pod_ip,
                        port=port,
                        stack_labels=labelled,
                    )
                )
        # What the Prometheus pod's init container makes of it, loaded as is.
        apps = client.AppsV1Api(api_client)
        wait_for(
            lambda: apps.read_namespaced_stateful_set("prometheus-stacks", namespace),
            timeout=30,
            what="Prometheus Operator's StatefulSet",
        )
        own_prometheus.load_config(
            rendered_config(
                apps,
                core,
                namespace,
                "stacks",
                work=tmp_path / "pod",
                reload_url=f"{own_prometheus.url}/-/reload",
            )
        )
        for name in STACKS:
            try:
                wait_for(
                    lambda n=name: _up(own_prometheus, namespace, n) == 2,
                    timeout=60,
                    what=f"both API pods of {name} scraped",
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_targets(own_prometheus)}") from None

        # Every series carries the stack's namespace and name, from Kubernetes.
        series = own_prometheus.query("retention_api_request_duration_seconds_count")
        assert {(s["metric"]["namespace"], s["metric"]["stack"]) for s in series} == {
            (namespace, name) for name in STACKS
        }
        # The operator's one query answers per stack once the rate window has samples.
        readings = wait_for(
            lambda: (
                (r := parse_latency(own_prometheus.query(latency_query()), now=time.time()))
                and all((namespace, s) in r and r[(namespace, s)].p95_ms for s in STACKS)
                and r
            ),
            timeout=60,
            what="a p95 per stack from the operator's latency query",
        )
        assert readings[(namespace, "orders")].p95_ms < 100
        assert readings[(namespace, "billing")].p95_ms > 300

        def p95(name: str) -> float | None:
            status = get_stack(custom, namespace, name).get("status") or {}
            value = (status.get("autoscaling") or {}).get("api", {}).get("p95Milliseconds")
            return float(value) if value is not None else None

        assert wait_for(lambda: p95("orders"), timeout=30, what="orders p95 in status") < 100
        assert wait_for(lambda: p95("billing"), timeout=30, what="billing p95 in status") > 300
    finally:
        for exporter in exporters:
            exporter.close()
        promop.stop()
