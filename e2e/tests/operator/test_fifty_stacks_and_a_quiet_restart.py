"""Fifty stacks created at once are all reconciled; a restart resyncs them with no write."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import yaml
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import GROUP, PLURAL, SECRET, VERSION, is_ready, stack_manifest, wait_for

pytestmark = pytest.mark.e2e
COUNT = 50


def _reconciles(operator: OperatorProcess) -> float:
    pattern = re.compile(r"^controller_runtime_reconcile_total\{[^}]*\} ([0-9.e+]+)$")
    return sum(
        float(m.group(1))
        for line in operator.metrics_text().splitlines()
        if (m := pattern.match(line))
    )


def _settled(operator: OperatorProcess, *, quiet_for: float = 3.0, timeout: float = 60) -> int:
    """Wait until the operator's mutating-request count stops moving; return it."""
    deadline = time.monotonic() + timeout
    last, since = operator.mutating_requests(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = operator.mutating_requests()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return now
    raise AssertionError("the operator kept writing")


def _stacks(custom: client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    return items


def _others_gone(custom: client.CustomObjectsApi, namespace: str) -> bool:
    items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    return all(item["metadata"]["namespace"] == namespace for item in items)


def test_fifty_stacks_reconcile_and_a_restart_writes_nothing(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    custom = client.CustomObjectsApi(api_client)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": namespace},
        "stringData": {"password": postgres.password},
    }
    stacks = [
        stack_manifest(f"s{i:02d}", namespace, postgres=postgres, redis=redis_standalone)
        for i in range(COUNT)
    ]
    path = control_plane.run_dir / f"fifty-{namespace}.yaml"
    path.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [secret, *stacks]})
    )
    began = time.monotonic()
    control_plane.kubectl("apply", "--server-side", "-f", str(path))

    wait_for(
        lambda: sum(is_ready(s) for s in _stacks(custom, namespace)) == COUNT,
        timeout=300,
        interval=2,
        what=f"{COUNT} stacks Ready",
    )
    print(f"\n{COUNT} stacks Ready {time.monotonic() - began:.1f}s after one kubectl apply")
    # The operator is the session's: stacks of earlier tests, whose namespaces are
    # deleted without waiting, would be resumed too, and a write for one of them is
    # not this resync's. Restart once only these fifty remain.
    wait_for(
        lambda: _others_gone(custom, namespace),
        timeout=120,
        what="earlier tests' stacks to be deleted with their namespaces",
    )
    _settled(operator)
    versions = {
        s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in _stacks(custom, namespace)
    }

    operator.restart()
    wait_for(
        lambda: _reconciles(operator) >= COUNT,
        timeout=120,
        what="the restarted operator to resume every stack",
    )
    writes = _settled(operator)
    print(f"no-op resync of {COUNT} stacks after a restart: {writes} mutating requests")
    sent = [
        line
        for line in operator.metrics_text().splitlines()
        if (
            line.startswith("retention_operator_kube_requests_total{")
            and not line.startswith('retention_operator_kube_requests_total{code="200",kind="')
        )
        or ('verb="GET"' not in line and line.startswith("retention_operator_kube_requests_total{"))
    ]
    assert writes == 0, f"a no-op resync sent {writes} mutating requests: {sent}"
    after = {
        s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in _stacks(custom, namespace)
    }
    assert after == versions, "a stack object changed during a no-op resync"
