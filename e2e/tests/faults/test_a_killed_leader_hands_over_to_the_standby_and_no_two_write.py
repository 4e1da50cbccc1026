"""Two operator replicas with kopf peering: only the leader writes; SIGKILLed, the standby
takes over, and at no moment do both write.

The leader (priority 100) and the standby (99) share a ClusterKopfPeering. The
leader reconciles a stack and scales its workers (1 -> 4 on a backlog that is
there before the stack). Then it is killed, and the stack's spec changes at once
(a new API image and ``workers.minReplicas: 5``): the change waits for the
standby, whose reconcile rolls the image and whose autoscaler lifts the workers
to 5. The audit log attributes every write to the replica that sent it (each has
a client certificate of its own); the peering object's heartbeats, which both
write by design, are counted apart.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from kubernetes import client

from harness import audit
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, get_stack, image, is_ready, replicas, wait_for

from .conftest import SCALED, queue_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

LEADER, STANDBY = "operator-leader", "operator-standby"
NEW_IMAGE = "example.invalid/workloads:2"
NEW_MIN = 5
# kopf's peering lifetime (its default, which the operator keeps): a killed leader's
# record is trusted this long, plus one keep-alive of the standby to notice.
TAKEOVER_BOUND_SECONDS = 60 + 60


def _ours(cp: ControlPlane, namespace: str) -> list[audit.Write]:
    """Every successful write of either replica: into the namespace, or to the peering."""
    return [
        w
        for w in audit.writes(cp.audit_log)
        if w.user in (LEADER, STANDBY)
        and w.succeeded
        and (w.namespace == namespace or w.resource == "clusterkopfpeerings")
    ]


def test_only_the_leader_writes_and_the_standby_takes_over_when_it_is_killed(
    control_plane: ControlPlane,
    operators: Callable[..., OperatorProcess],
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    peering = f"faults-{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": peering}},
    )
    leader = operators(
        LEADER, env={"RETENTION_PEERING_NAME": peering, "RETENTION_PEERING_PRIORITY": "100"}
    )
    standby = operators(
        STANDBY, env={"RETENTION_PEERING_NAME": peering, "RETENTION_PEERING_PRIORITY": "99"}
    )
    leader.start()
    standby.start()
    create_secret(core, namespace, postgres.password)
    manifest = queue_stack(namespace, postgres=postgres, redis=redis_db)
    apply_ok(control_plane, manifest)
    wait_for(lambda: is_ready(get_stack(custom, namespace, "queue")), timeout=90, what="Ready")
    wait_for(
        lambda: replicas(apps, namespace, "queue-workers") == SCALED,
        timeout=30,
        what=f"the leader's scale to {SCALED}",
    )
    time.sleep(5)  # Some ticks and heartbeats of both while the leader lives.

    leader.kill()
    killed_at = dt.datetime.now(dt.UTC)
    killed = time.monotonic()
    manifest["spec"]["api"]["image"] = NEW_IMAGE
    manifest["spec"]["workers"]["minReplicas"] = NEW_MIN
    apply_ok(control_plane, manifest)
    wait_for(
        lambda: image(apps, namespace, "queue-api") == NEW_IMAGE,
        timeout=TAKEOVER_BOUND_SECONDS,
        interval=0.5,
        what="the standby to reconcile the spec change",
    )
    reconciled = time.monotonic() - killed
    wait_for(
        lambda: replicas(apps, namespace, "queue-workers") == NEW_MIN,
        timeout=30,
        what=f"the standby's autoscaler to lift the workers to {NEW_MIN}",
    )
    scaled = time.monotonic() - killed
    wait_for(lambda: is_ready(get_stack(custom, namespace, "queue")), timeout=60, what="Ready")

    writes = _ours(control_plane, namespace)
    work = [w for w in writes if w.resource != "clusterkopfpeerings"]
    by_leader = [w for w in work if w.user == LEADER]
    by_standby = [w for w in work if w.user == STANDBY]
    assert by_leader, "the leader wrote nothing"
    assert by_standby, "the standby wrote nothing after the kill"
    # Never both: every write of the leader before the kill, every one of the standby after.
    assert max(w.at for w in by_leader) < killed_at
    early = [(w.verb, w.resource, w.name, w.at) for w in by_standby if w.at < killed_at]
    assert early == [], f"the standby wrote while the leader lived: {early}"
    first_standby = min(w.at for w in by_standby)
    takeover = (first_standby - killed_at).total_seconds()
    scale_writes = Counter(
        w.user
        for w in work
        if w.resource == "deployments"
        and w.name == "queue-workers"
        and w.field_manager == "retention-autoscaler"
    )
    counts = {
        user: dict(Counter(w.resource for w in writes if w.user == user))
        for user in (LEADER, STANDBY)
    }
    print(
        f"\nleader killed; the standby's first write {takeover:.1f} s later, the spec change "
        f"reconciled {reconciled:.1f} s and the workers at {NEW_MIN} {scaled:.1f} s after the "
        f"kill; writes by replica and resource: {counts}; workers replicas writes: "
        f"{dict(scale_writes)}; writes of both at once: 0; lost: nothing"
    )
    assert scale_writes == {LEADER: 2, STANDBY: 1}, scale_writes
