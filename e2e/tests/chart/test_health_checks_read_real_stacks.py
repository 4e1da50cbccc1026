"""The Argo CD health check and kstatus read the stacks the real operator writes.

The fixture tests beside this file check docs/gitops.md's Lua and the kstatus
rules on hand-written status; here the objects come from the control plane,
written by the session's operator, and are read whole with the
CustomObjectsApi, as Argo CD and Flux read them. Each test puts its stacks in
its own namespace.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.kstatus import Status, compute
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    SECRET,
    apply_ok,
    condition,
    create_secret,
    get_stack,
    is_ready,
    stack_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e

Stack = dict[str, Any]
ArgoHealth = Callable[[Stack], tuple[str, str]]


def _explain(stack: Stack) -> str:
    """What the operator wrote, for assertion messages."""
    status = stack.get("status") or {}
    conds = [
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
        for c in status.get("conditions") or []
    ]
    return (
        f"generation={stack['metadata'].get('generation')} "
        f"observedGeneration={status.get('observedGeneration')} "
        f"paused={stack['spec'].get('paused')} conditions={conds}"
    )


def _observed(stack: Stack) -> bool:
    """The operator has written status for the stack's current generation."""
    status = stack.get("status") or {}
    return bool(
        status.get("observedGeneration") == stack["metadata"]["generation"]
        and condition(stack, "Ready")
    )


def _wait_stack(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    predicate: Callable[[Stack], bool],
    *,
    what: str,
    timeout: float = 90,
) -> Stack:
    stack: Stack = wait_for(
        lambda: (s := get_stack(custom, namespace, name)) and predicate(s) and s,
        timeout=timeout,
        what=f"{name}: {what}",
    )
    return stack


def _ready_stack(
    control_plane: ControlPlane,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    postgres: PostgresServer,
    redis: RedisServer,
) -> Stack:
    """An external-Redis stack on the harness services, once it is Ready; returns its manifest."""
    create_secret(core, namespace, postgres.password)
    manifest = stack_manifest(name, namespace, postgres=postgres, redis=redis)
    apply_ok(control_plane, manifest)
    _wait_stack(custom, namespace, name, is_ready, what="Ready")
    return manifest


def test_a_new_stack_whose_children_are_starting_is_progressing(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    argocd_health: ArgoHealth,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    # A managed Redis never forms on KWOK: the stack stays on its way to Ready.
    apply_ok(
        control_plane,
        stack_manifest(
            "starting", namespace, postgres=postgres, managed_redis=True, retain_on_delete=False
        ),
    )
    stack = _wait_stack(custom, namespace, "starting", _observed, what="first status")
    seen = _explain(stack)
    assert condition(stack, "Ready")["status"] == "False", seen  # type: ignore[index]
    assert condition(stack, "Reconciling")["status"] == "True", seen  # type: ignore[index]

    status, message = argocd_health(stack)
    assert status == "Progressing", f"{message} / {seen}"
    assert message == condition(stack, "Reconciling")["message"]  # type: ignore[index]
    assert compute(stack).status == Status.IN_PROGRESS, seen


def test_a_ready_stack_is_healthy_and_current(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
    argocd_health: ArgoHealth,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    _ready_stack(control_plane, custom, core, namespace, "serving", postgres, redis_standalone)
    stack = get_stack(custom, namespace, "serving")
    seen = _explain(stack)

    status, message = argocd_health(stack)
    assert (status, message) == ("Healthy", "all components are ready"), seen
    assert compute(stack).status == Status.CURRENT, seen


def test_a_stack_without_its_secret_is_degraded_and_failed(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
    argocd_health: ArgoHealth,
) -> None:
    custom = client.CustomObjectsApi(api_client)
    apply_ok(
        control_plane,
        stack_manifest("lonely", namespace, postgres=postgres, redis=redis_standalone),
    )
    stack = _wait_stack(
        custom,
        namespace,
        "lonely",
        lambda s: (condition(s, "Stalled") or {}).get("status") == "True",
        what="Stalled=True",
        timeout=60,
    )
    seen = _explain(stack)
    assert condition(stack, "Stalled")["reason"] == "SecretNotFound", seen  # type: ignore[index]

    status, message = argocd_health(stack)
    assert status == "Degraded", f"{message} / {seen}"
    assert message.startswith(f"SecretNotFound: Secret {namespace}/{SECRET}"), message
    result = compute(stack)
    assert result.status == Status.FAILED, seen
    assert result.message.startswith(f"Secret {namespace}/{SECRET}"), result.message


def test_a_paused_ready_stack_is_suspended_and_current(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
    argocd_health: ArgoHealth,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    manifest = _ready_stack(
        control_plane, custom, core, namespace, "held", postgres, redis_standalone
    )
    paused = copy.deepcopy(manifest)
    paused["spec"]["paused"] = True
    apply_ok(control_plane, paused)
    stack = _wait_stack(
        custom,
        namespace,
        "held",
        lambda s: _observed(s) and (condition(s, "Reconciling") or {}).get("reason") == "Paused",
        what="Reconciling reason Paused",
        timeout=60,
    )
    seen = _explain(stack)
    assert condition(stack, "Ready")["status"] == "True", seen  # type: ignore[index]

    status, message = argocd_health(stack)
    assert status == "Suspended", f"{message} / {seen}"
    assert message == "spec.paused is true: children are left as they are"
    # kstatus has no notion of paused: Reconciling False, Stalled False, Ready True.
    assert compute(stack).status == Status.CURRENT, seen


def test_a_spec_change_the_operator_has_not_seen_is_progressing(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
    argocd_health: ArgoHealth,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    manifest = _ready_stack(
        control_plane, custom, core, namespace, "moving", postgres, redis_standalone
    )
    changed = copy.deepcopy(manifest)
    changed["spec"]["api"]["image"] = "example.invalid/workloads:2"
    unseen = stack_manifest("unseen", namespace, postgres=postgres, redis=redis_standalone)

    operator.stop()
    try:
        apply_ok(control_plane, changed)
        apply_ok(control_plane, unseen)
        stack = get_stack(custom, namespace, "moving")
        fresh = get_stack(custom, namespace, "unseen")
    finally:
        operator.start()

    seen = _explain(stack)
    generation, observed = stack["metadata"]["generation"], stack["status"]["observedGeneration"]
    assert generation > observed, seen
    # The conditions still say Ready for the generation before.
    assert condition(stack, "Ready")["status"] == "True", seen  # type: ignore[index]
    status, message = argocd_health(stack)
    assert status == "Progressing", f"{message} / {seen}"
    assert f"generation {generation}" in message and f"observed {observed}" in message, message
    result = compute(stack)
    assert result.status == Status.IN_PROGRESS, seen
    assert f"generation is {generation}, but latest observed generation is {observed}" in (
        result.message
    )

    # A stack the operator has never seen: no status at all. Argo CD waits;
    # kstatus calls it Current, the reason a Flux Kustomization of stacks
    # dependsOn the operator (docs/gitops.md).
    assert not fresh.get("status"), _explain(fresh)
    assert argocd_health(fresh)[0] == "Progressing"
    assert compute(fresh).status == Status.CURRENT

    # Once back, the operator catches up and both read the stacks as done.
    for name in ("moving", "unseen"):
        done = _wait_stack(custom, namespace, name, is_ready, what="Ready after the restart")
        assert argocd_health(done)[0] == "Healthy", _explain(done)
        assert compute(done).status == Status.CURRENT, _explain(done)
