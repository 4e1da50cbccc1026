"""An operator SIGKILLed between a reconcile's writes: the next one finishes the work.

The kill lands when the first child of the reconcile's first wave (the PgBouncer
ConfigMap) is stored, before the workloads of the second wave, on a new stack
and on a spec change: an admission policy refuses the workloads' writes until
the kill has landed, so the operator cannot outrun it. The next operator must
bring every child to the current spec without deleting one, and an operator
started after it must find nothing left to correct (no write at all): nothing
stays half-applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    apply_ok,
    create_secret,
    get_stack,
    image,
    is_ready,
    stack_manifest,
    wait_for,
)

from .conftest import (
    WatchTrigger,
    children,
    deployment_writes_refused,
    lost_children,
    quiet_resync,
    shape,
    wait_quiet,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NEW_IMAGE = "example.invalid/workloads:2"
NEW_POOL = 7


def _has_new_pool(config_map: Any) -> bool:
    return any(
        f"default_pool_size = {NEW_POOL}" in text for text in (config_map.data or {}).values()
    )


def _pool_size(core: client.CoreV1Api, namespace: str, stack: str) -> bool:
    return _has_new_pool(core.read_namespaced_config_map(f"{stack}-pgbouncer-config", namespace))


def _is_config(stack: str) -> Callable[[Any], bool]:
    return lambda obj: bool(obj.metadata.name == f"{stack}-pgbouncer-config")


def test_a_new_stack_killed_after_its_first_child_is_finished_by_the_next_operator(
    control_plane: ControlPlane,
    operators: Callable[..., OperatorProcess],
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    first = operators("operator-a")
    first.start()
    with deployment_writes_refused(api_client, namespace):
        kill = WatchTrigger(
            core.list_namespaced_config_map, namespace, _is_config("shop"), first.kill, timeout=90
        )
        apply_ok(
            control_plane, stack_manifest("shop", namespace, postgres=postgres, redis=redis_db)
        )
        killed = kill.wait()
        time.sleep(1)  # Requests already on the wire land (or not) before the count.
        at_kill = children(control_plane, namespace, "shop")
    workloads = [k for k in at_kill if k[0] == "Deployment"]

    second = operators("operator-b")
    started = time.monotonic()
    second.start()
    # A stack the second operator makes from scratch, undisturbed: the shape to reach.
    apply_ok(control_plane, stack_manifest("ref", namespace, postgres=postgres, redis=redis_db))
    wait_for(
        lambda: is_ready(get_stack(custom, namespace, "shop")),
        timeout=90,
        interval=0.2,
        what="the killed reconcile's stack Ready under the next operator",
    )
    converged = time.monotonic() - started
    wait_for(lambda: is_ready(get_stack(custom, namespace, "ref")), timeout=90, what="ref Ready")
    after = children(control_plane, namespace, "shop")
    assert shape(after, "shop") == shape(children(control_plane, namespace, "ref"), "ref")
    lost = lost_children(at_kill, after)
    assert lost == []
    assert workloads == [], f"a workload was written before the kill: {sorted(at_kill)}"
    wait_quiet(control_plane, "operator-b", namespace)
    second.stop()
    extra = quiet_resync(control_plane, operators, namespace, stacks=2)
    print(
        f"\nkilled mid-create with {len(at_kill)} of {len(after)} children written "
        f"({len(workloads)} of 3 Deployments); Ready {converged:.1f} s after the next "
        f"operator's start ({started - killed:.1f} s after the kill); "
        f"lost: {lost or 'nothing'}; a later operator's writes: {extra or 'none'}"
    )
    assert extra == [], f"an operator after the recovery still corrected: {extra}"


def test_a_spec_change_killed_after_its_first_child_is_finished_by_the_next_operator(
    control_plane: ControlPlane,
    operators: Callable[..., OperatorProcess],
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    first = operators("operator-a")
    first.start()
    manifest = stack_manifest("shop", namespace, postgres=postgres, redis=redis_db)
    apply_ok(control_plane, manifest)
    wait_for(lambda: is_ready(get_stack(custom, namespace, "shop")), timeout=90, what="Ready")
    before = children(control_plane, namespace, "shop")

    manifest["spec"]["api"]["image"] = NEW_IMAGE
    manifest["spec"]["workers"]["image"] = NEW_IMAGE
    manifest["spec"]["pgbouncer"]["defaultPoolSize"] = NEW_POOL
    with deployment_writes_refused(api_client, namespace):
        kill = WatchTrigger(
            core.list_namespaced_config_map,
            namespace,
            lambda obj: _is_config("shop")(obj) and _has_new_pool(obj),
            first.kill,
            timeout=90,
        )
        apply_ok(control_plane, manifest)
        kill.wait()
        time.sleep(1)
        images_at_kill = [image(apps, namespace, d) for d in ("shop-api", "shop-workers")]

    second = operators("operator-b")
    started = time.monotonic()
    second.start()

    def finished() -> bool:
        stack = get_stack(custom, namespace, "shop")
        return (
            is_ready(stack)
            and _pool_size(core, namespace, "shop")
            and all(image(apps, namespace, d) == NEW_IMAGE for d in ("shop-api", "shop-workers"))
        )

    wait_for(finished, timeout=90, interval=0.2, what="the killed spec change finished")
    converged = time.monotonic() - started
    after = children(control_plane, namespace, "shop")
    lost = lost_children(before, after)
    assert lost == []
    assert NEW_IMAGE not in images_at_kill, (
        f"an image was written before the kill: {images_at_kill}"
    )
    wait_quiet(control_plane, "operator-b", namespace)
    second.stop()
    extra = quiet_resync(control_plane, operators, namespace, stacks=1)
    print(
        f"\nkilled mid-update with {images_at_kill.count(NEW_IMAGE)} of 2 images changed; "
        f"every child on the new spec {converged:.1f} s after the next operator's start; "
        f"lost: {lost or 'nothing'}; a later operator's writes: {extra or 'none'}"
    )
    assert extra == [], f"an operator after the recovery still corrected: {extra}"
