"""Bring stacks into every case of docs/gitops.md's table, with the real operator.

:func:`record` creates one stack per case of :data:`harness.gitops_table.CASES`
in one namespace, lets the operator act on them, and returns each stack as
read back from the API server, whole, as Argo CD and Flux read it. The e2e
test (``test_health_checks_read_real_stacks.py``) and ``make gitops-table``
both call it; :func:`stable` turns a recorded stack into a fixture that does
not change from run to run.

Two cases need the operator away (a stack it has never seen, a spec change it
has not acted on): :func:`record` stops the operator for them and starts it
again before it returns, even on failure. The stack being deleted is held by
a finalizer of the recorder's own, removed again before returning.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from kubernetes import client

from harness.controlplane import ControlPlane
from harness.gitops_table import CASES
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    GROUP,
    PLURAL,
    VERSION,
    apply_ok,
    condition,
    create_secret,
    get_stack,
    is_ready,
    stack_manifest,
    wait_for,
)
from retention_operator.autoscaling.report import OWNED_KEYS

Stack = dict[str, Any]
HOLD = "e2e.retention.dev/hold"
ABSENT_SECRET = "absent-credentials"
STABLE_TIME = "2025-11-20T09:00:00Z"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_POD_IP = re.compile(r"127\.64\.\d+\.\d+")


def observed(stack: Stack) -> bool:
    """The operator has written status, Ready included, for the stack's current generation."""
    status = stack.get("status") or {}
    return bool(
        status.get("observedGeneration") == stack["metadata"]["generation"]
        and condition(stack, "Ready")
    )


def _true(type_: str) -> Callable[[Stack], bool]:
    return lambda s: observed(s) and (condition(s, type_) or {}).get("status") == "True"


def _forming(stack: Stack) -> bool:
    """Reconciling, in the state a managed Redis on KWOK stays in: every pod up, none answering."""
    redis = ((stack.get("status") or {}).get("components") or {}).get("redis") or {}
    return _true("Reconciling")(stack) and str(redis.get("message", "")).startswith(
        "waiting for the Redis cluster to form"
    )


def _paused(stack: Stack) -> bool:
    return observed(stack) and (condition(stack, "Reconciling") or {}).get("reason") == "Paused"


def _deleting(stack: Stack) -> bool:
    return bool(stack["metadata"].get("deletionTimestamp"))


def record(
    cp: ControlPlane,
    api_client: client.ApiClient,
    operator: OperatorProcess,
    namespace: str,
    *,
    postgres: PostgresServer,
    redis: RedisServer,
) -> dict[str, Stack]:
    """Every case of the table, by name, as the operator left it in ``namespace``.

    Raises AssertionError (naming the case) if a stack does not reach its case in time.
    """
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)

    def external(name: str) -> Stack:
        return stack_manifest(name, namespace, postgres=postgres, redis=redis)

    def managed(name: str) -> Stack:
        # A managed Redis never forms on KWOK: the stack stays on its way to Ready.
        return stack_manifest(
            name, namespace, postgres=postgres, managed_redis=True, retain_on_delete=False
        )

    stalled = external("stalled")
    stalled["spec"]["pgbouncer"]["credentialsSecretRef"]["name"] = ABSENT_SECRET
    deleting = external("deleting")
    deleting["metadata"]["finalizers"] = [HOLD]
    manifests = {
        "ready": external("ready"),
        "paused-ready": external("paused-ready"),
        "generation-ahead": external("generation-ahead"),
        "deleting": deleting,
        "new": managed("new"),
        "paused-starting": managed("paused-starting"),
        "stalled": stalled,
    }
    for manifest in manifests.values():
        apply_ok(cp, manifest)

    def wait(name: str, predicate: Callable[[Stack], bool], what: str) -> Stack:
        try:
            found: Stack = wait_for(
                lambda: (s := get_stack(custom, namespace, name)) and predicate(s) and s,
                timeout=120,
                what=f"{namespace}/{name}: {what}",
            )
        except AssertionError as exc:
            status = (get_stack(custom, namespace, name).get("status") or {}).get("conditions")
            raise AssertionError(f"{exc}; its conditions: {status}") from None
        return found

    for name in ("ready", "paused-ready", "generation-ahead", "deleting"):
        wait(name, is_ready, "Ready")
    for name in ("new", "paused-starting"):
        wait(name, _forming, "every Redis pod ready, the cluster waiting to form")
    wait("stalled", _true("Stalled"), "Stalled=True")

    for name in ("paused-ready", "paused-starting"):
        paused = copy.deepcopy(manifests[name])
        paused["spec"]["paused"] = True
        apply_ok(cp, paused)
        wait(name, _paused, "Reconciling reason Paused")
    try:
        cp.kubectl("delete", "rstack", "deleting", "-n", namespace, "--wait=false")
        wait("deleting", _deleting, "deletionTimestamp")
        return _while_away(cp, custom, operator, namespace, manifests, external)
    finally:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "deleting", {"metadata": {"finalizers": None}}
        )


def _while_away(
    cp: ControlPlane,
    custom: client.CustomObjectsApi,
    operator: OperatorProcess,
    namespace: str,
    manifests: dict[str, Stack],
    external: Callable[[str], Stack],
) -> dict[str, Stack]:
    """Stop the operator, make the two cases it must not see, read every case, start it again."""
    changed = copy.deepcopy(manifests["generation-ahead"])
    changed["spec"]["api"]["image"] = "example.invalid/workloads:2"
    operator.stop()
    try:
        apply_ok(cp, changed)
        apply_ok(cp, external("unobserved"))
        return {case: get_stack(custom, namespace, case) for case in CASES}
    finally:
        operator.start()


def stable(stack: Stack, *, namespace: str, postgres: PostgresServer, redis: RedisServer) -> Stack:
    """``stack`` with what changes from run to run made fixed.

    The namespace becomes ``shop``, the harness addresses become cluster
    names, KWOK's pod IPs become 10.244.0.N, times become one instant; uid,
    resourceVersion, managedFields, the annotations and what the autoscaling
    loop writes are dropped.
    """
    out = copy.deepcopy(stack)
    meta = out["metadata"]
    # The annotations are kopf's progress records; they say nothing about status.
    for key in ("uid", "resourceVersion", "managedFields", "annotations"):
        meta.pop(key, None)
    # The autoscaling loop writes these on its own clock; neither tool reads them.
    for key in OWNED_KEYS:
        (out.get("status") or {}).pop(key, None)
    database = out["spec"]["pgbouncer"]["database"]
    database.update({"host": "postgres.databases.svc", "port": 5432})
    text = json.dumps(out)
    text = text.replace(redis.url, "redis://redis.shop.svc:6379/0")
    text = text.replace(f'"{namespace}"', '"shop"').replace(f"{namespace}/", "shop/")
    text = _TIME.sub(STABLE_TIME, text)
    # KWOK hands out pod IPs in any order: number them by first appearance.
    pods: dict[str, str] = {}
    text = _POD_IP.sub(lambda m: pods.setdefault(m[0], f"10.244.0.{len(pods) + 1}"), text)
    result: Stack = json.loads(text)
    return result
