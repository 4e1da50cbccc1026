"""The stack's PodMonitor: every pod of the stack, one endpoint per named metrics port."""

from __future__ import annotations

from retention_operator import names
from retention_operator.builders import api, monitoring, naming, pgbouncer, redis, workers

from .conftest import MakeStack


def _ports(manifest: dict[str, object]) -> set[str]:
    containers = manifest["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    return {p["name"] for c in containers for p in c.get("ports", [])}


def test_it_selects_the_stacks_pods_and_scrapes_each_component_and_exporter(
    make_stack: MakeStack,
) -> None:
    stack = make_stack()
    monitor = monitoring.build_pod_monitor(stack)
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    assert monitor["metadata"]["name"] == "demo" and monitor["metadata"]["namespace"] == "ns"
    assert monitor["spec"]["selector"] == {"matchLabels": {names.LABEL_STACK: "demo"}}
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    # Each endpoint is a port the component's pods really name.
    api_ports = _ports(api.build_api_deployment(stack))
    worker_ports = _ports(workers.build_workers_deployment(stack))
    assert naming.REDIS_EXPORTER_PORT_NAME in _ports(redis.build_redis_statefulset(stack))
    exporting = make_stack(
        pgbouncer={
            **stack.spec.pgbouncer.model_dump(by_alias=True, exclude_none=True),
            "exporter": {"image": "pgbx:1"},
        }
    )
    pgbouncer_ports = _ports(pgbouncer.build_pgbouncer_deployment(exporting))
    assert naming.PGBOUNCER_EXPORTER_PORT_NAME in pgbouncer_ports
    # A port no container names (PgBouncer's exporter left out) yields no target.
    assert [e["port"] for e in endpoints] == [
        *sorted(api_ports),
        *sorted(worker_ports),
        naming.REDIS_EXPORTER_PORT_NAME,
        naming.PGBOUNCER_EXPORTER_PORT_NAME,
    ]
    assert all(e["path"] == "/metrics" for e in endpoints)


def test_stack_and_namespace_come_from_kubernetes_not_from_the_pod(make_stack: MakeStack) -> None:
    [endpoint, *_] = monitoring.build_pod_monitor(make_stack())["spec"]["podMetricsEndpoints"]
    assert endpoint["honorLabels"] is False
    assert {
        "action": "replace",
        "sourceLabels": ["__meta_kubernetes_pod_label_retention_dev_stack"],
        "targetLabel": "stack",
    } in endpoint["relabelings"]


def test_extra_labels_and_interval_from_the_spec(make_stack: MakeStack) -> None:
    stack = make_stack(monitoring={"podMonitor": {"labels": {"release": "kps"}, "interval": "15s"}})
    monitor = monitoring.build_pod_monitor(stack)
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["metadata"]["labels"][names.LABEL_STACK] == "demo"
    assert {e["interval"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"15s"}
    assert (
        "interval"
        not in monitoring.build_pod_monitor(make_stack())["spec"]["podMetricsEndpoints"][0]
    )
