"""Prometheus and Redis behind a firewall (packets dropped, not refused): replicas hold,
a Warning and status say why, and everything recovers by itself when the rule goes.

A stopped server refuses at once (``test_prometheus_down_holds_replicas_and_warns.py``);
a firewalled one never answers, so each read waits for the reader's timeout while
ticks keep coming. The rules are in the host's OUTPUT chain, where the operator of
the e2e tier runs; the demo on the real node runs no Prometheus, so the same fault
inside the node's namespace is not tried here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

import retention_contract as contract
from harness.controlplane import ControlPlane
from harness.firewall import dropped, leftovers
from harness.operator import OperatorProcess
from harness.services import PostgresServer, PrometheusServer, RedisServer
from harness.stacks import (
    apply_ok,
    create_secret,
    events,
    get_stack,
    replicas,
    stack_manifest,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NAME = "walled"
BLOCKED_SECONDS = 8.0
BACKLOG = 120


def _query_errors(operator: OperatorProcess) -> dict[str, float]:
    """``retention_autoscaler_query_errors_total`` by source, from the operator's /metrics."""
    found: dict[str, float] = {}
    pattern = re.compile(r'^retention_autoscaler_query_errors_total\{source="([^"]+)"\} (\S+)$')
    for line in operator.metrics_text().splitlines():
        if match := pattern.match(line):
            found[match.group(1)] = float(match.group(2))
    return found


def _settled(read: Callable[[], dict[str, int]], *, quiet: float = 4.0) -> dict[str, int]:
    """Wait (up to 60 s) until ``read()`` has not changed for ``quiet`` seconds; return it."""
    deadline = time.monotonic() + 60
    last, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, f"replicas still moving after 60 s: {last}"
        time.sleep(0.5)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    return last


def _warnings(core: client.CoreV1Api, namespace: str, source: str) -> list[Any]:
    return [
        e
        for e in events(core, namespace, reason="MetricsUnavailable")
        if source in e.message and "did not answer" in e.message
    ]


def test_a_firewalled_prometheus_and_redis_hold_replicas_warn_and_recover(
    control_plane: ControlPlane,
    autoscaling_operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
    prometheus: PrometheusServer,
    api_exporter: Callable[..., Any],
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    api = {"minReplicas": 3, "maxReplicas": 6}
    workers = {"maxReplicas": 8, "autoscaling": {"jobsPerWorkerPerSecond": 1}}
    apply_ok(
        control_plane,
        stack_manifest(
            NAME, namespace, postgres=postgres, redis_url=redis_db.url, api=api, workers=workers
        ),
    )
    wait_for(lambda: replicas(apps, namespace, f"{NAME}-api") == 3, timeout=60, what="API")
    api_exporter(namespace=namespace, stack=NAME, seconds=0.03, per_second=20)
    with redis_db.client() as conn:
        conn.xgroup_create(contract.default_stream(namespace, NAME), "w", id="0", mkstream=True)
        pipe = conn.pipeline(transaction=False)
        for n in range(BACKLOG):
            pipe.xadd(contract.default_stream(namespace, NAME), {"job": str(n)})
        pipe.execute()

    def component(name: str) -> dict[str, Any]:
        status = get_stack(custom, namespace, NAME).get("status") or {}
        return dict(status.get("autoscaling", {}).get(name, {}))

    wait_for(
        lambda: (
            component("api").get("p95Milliseconds") is not None
            and (get_stack(custom, namespace, NAME).get("status") or {}).get("backlog") == BACKLOG
        ),
        timeout=60,
        what="a p95 and the backlog in status while both sources answer",
    )
    # Let the scale-out on the backlog (and any on latency) settle: the hold is of these.
    held = _settled(
        lambda: {c: replicas(apps, namespace, f"{NAME}-{c}") for c in ("api", "workers")}
    )
    assert held["workers"] > 1, f"the backlog did not scale the workers out: {held}"
    before = _query_errors(autoscaling_operator)

    with dropped(prometheus.port, redis_db.port, host=redis_db.host):
        blocked = time.monotonic()
        warned = {}
        for source in ("Prometheus", "Redis"):
            warning = wait_for(
                lambda s=source: _warnings(core, namespace, s),  # type: ignore[misc]
                timeout=15,
                what=f"a MetricsUnavailable Warning naming {source}",
            )[0]
            warned[source] = time.monotonic() - blocked
            assert warning.type == "Warning"
            assert "replicas hold" in warning.message
        api_status = wait_for(
            lambda: None if "p95Milliseconds" in (s := component("api")) else s,
            timeout=15,
            what="the API's status without a p95",
        )
        assert api_status["lastDecision"] == "Hold"
        assert "missing data never scales down" in api_status["lastReason"]
        while time.monotonic() < blocked + BLOCKED_SECONDS:
            now = {c: replicas(apps, namespace, f"{NAME}-{c}") for c in held}
            assert now == held, f"replicas moved behind the firewall: {now} != {held}"
            time.sleep(0.5)
        # One Warning each however many ticks failed, and every tick tried again.
        assert len(_warnings(core, namespace, "Prometheus")) == 1
        assert len(_warnings(core, namespace, "Redis")) == 1
        after = _query_errors(autoscaling_operator)
        failed = {s: after.get(s, 0.0) - before.get(s, 0.0) for s in ("prometheus", "redis")}
        assert all(n >= 4 for n in failed.values()), failed
    assert leftovers() == []
    lifted = time.monotonic()

    wait_for(
        lambda: (
            component("api").get("failedTicks", 0) == 0
            and component("workers").get("failedTicks", 0) == 0
            and component("api").get("p95Milliseconds") is not None
            and (get_stack(custom, namespace, NAME).get("status") or {}).get("backlog") == BACKLOG
        ),
        timeout=30,
        what="status back to fresh signals after the rule went",
    )
    recovered = time.monotonic() - lifted
    assert {c: replicas(apps, namespace, f"{NAME}-{c}") for c in held} == held
    print(
        f"\nwarned {warned['Prometheus']:.1f} s (Prometheus) and {warned['Redis']:.1f} s "
        f"(Redis) after the rule; failed reads in {BLOCKED_SECONDS:.0f} s: {failed}; "
        f"replicas held at {held}; recovered {recovered:.1f} s after the rule went"
    )
