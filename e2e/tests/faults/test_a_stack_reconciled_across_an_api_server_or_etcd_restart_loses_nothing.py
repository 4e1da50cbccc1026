"""The API server or etcd restarted while a new stack reconciles: the operator finishes it.

The restart begins when the reconcile's first child (the PgBouncer ConfigMap) is
stored: the API server stops gracefully (SIGTERM), or etcd does under it, stays
down 3 s and comes back with the same data. The operator keeps running through
it. Its stack must become Ready with every child a stack made undisturbed gets,
none made twice, and an operator started after it must find nothing to correct.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, get_stack, is_ready, stack_manifest, wait_for

from .conftest import (
    WatchTrigger,
    children,
    lost_children,
    quiet_resync,
    shape,
    wait_quiet,
    writes_by,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DOWN_SECONDS = 3.0
_SAMPLE = re.compile(r'^retention_operator_kube_requests_total\{.*code="([^"]*)".*\} ([0-9.e+]+)$')


def failed_requests(operator: OperatorProcess) -> int:
    """Requests of the operator's kube layer left unanswered or answered 429 or 5xx
    (a 404 or a 409 is an ordinary answer there)."""
    return int(
        sum(
            float(m.group(2))
            for line in operator.metrics_text().splitlines()
            if (m := _SAMPLE.match(line))
            and (m.group(1) in ("error", "429") or m.group(1)[0] == "5")
        )
    )


@pytest.mark.parametrize("server", ["kube-apiserver", "etcd"])
def test_a_stack_reconciling_while_a_server_restarts_becomes_ready_whole(
    server: str,
    control_plane: ControlPlane,
    operators: Callable[..., OperatorProcess],
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    operator = operators("operator-a")
    operator.start()
    failed_before = failed_requests(operator)
    back: list[float] = []
    stopped: list[dt.datetime] = []

    def restart() -> None:
        stopped.append(dt.datetime.now(dt.UTC))
        control_plane.restart(server, down_seconds=DOWN_SECONDS)
        back.append(time.monotonic())

    fault = WatchTrigger(
        core.list_namespaced_config_map,
        namespace,
        lambda obj: bool(obj.metadata.name == "shop-pgbouncer-config"),
        restart,
        timeout=90,
    )
    apply_ok(control_plane, stack_manifest("shop", namespace, postgres=postgres, redis=redis_db))
    fault.wait()
    at_restart = children(control_plane, namespace, "shop")
    wait_for(
        lambda: is_ready(get_stack(custom, namespace, "shop")),
        timeout=120,
        interval=0.2,
        what=f"the stack Ready after the {server} restart",
    )
    converged = time.monotonic() - back[0]
    assert operator.proc is not None and operator.proc.alive(), operator.log_tail()
    failed = failed_requests(operator) - failed_before
    apply_ok(control_plane, stack_manifest("ref", namespace, postgres=postgres, redis=redis_db))
    wait_for(lambda: is_ready(get_stack(custom, namespace, "ref")), timeout=90, what="ref Ready")
    after = children(control_plane, namespace, "shop")
    assert shape(after, "shop") == shape(children(control_plane, namespace, "ref"), "ref")
    lost = lost_children(at_restart, after)
    assert lost == []
    # What the audit log holds of the operator's writes before the stop began.
    before = {
        (w.resource, w.name)
        for w in writes_by(control_plane, "operator-a", namespace)
        if w.at < stopped[0] and w.resource != "retentionstacks"
    }
    wait_quiet(control_plane, "operator-a", namespace)
    operator.stop()
    extra = quiet_resync(control_plane, operators, namespace, stacks=2)
    print(
        f"\n{server} down {DOWN_SECONDS:.0f} s with {len(before)} of {len(after)} children "
        f"written before its stop; the stack Ready {converged:.1f} s after it was back; the "
        f"operator's failed requests: {failed}; lost: {lost or 'nothing'}; a later "
        f"operator's writes: {extra or 'none'}"
    )
    assert extra == [], f"an operator after the recovery still corrected: {extra}"
