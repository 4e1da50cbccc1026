"""Argo CD's health check and the kstatus library read the stacks the real operator writes.

The session's operator brings one stack into every case of docs/gitops.md's
table (``harness.gitops_cases.record``, in a namespace of this module's own);
the stacks are read whole from the API server, as Argo CD and Flux read
them, and run through the gopher-lua runner and the kstatus library. The
table in the doc must be exactly what they say. The recorder stops the
operator for the two cases it must not see and starts it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from harness.controlplane import ControlPlane
from harness.gitops import argocd_health, kstatus
from harness.gitops_cases import ABSENT_SECRET, record
from harness.gitops_table import doc_table, render
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import condition, get_stack, is_ready, wait_for

pytestmark = pytest.mark.e2e

Stack = dict[str, Any]


@pytest.fixture(scope="module")
def module_api(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))  # type: ignore[no-untyped-call]
    yield api
    api.close()


@pytest.fixture(scope="module")
def cases(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    module_api: client.ApiClient,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> Iterator[tuple[str, dict[str, Stack]]]:
    """(namespace, case -> stack as the operator left it), recorded once for the module."""
    namespace = f"gitops-cases-{uuid.uuid4().hex[:5]}"
    control_plane.kubectl("create", "namespace", namespace)
    try:
        yield (
            namespace,
            record(
                control_plane,
                module_api,
                operator,
                namespace,
                postgres=postgres,
                redis=redis_standalone,
            ),
        )
    finally:
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _explain(stack: Stack) -> str:
    status = stack.get("status") or {}
    conds = [
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
        for c in status.get("conditions") or []
    ]
    return (
        f"{stack['metadata']['name']}: generation={stack['metadata'].get('generation')} "
        f"observedGeneration={status.get('observedGeneration')} conditions={conds}"
    )


def test_the_doc_table_is_what_the_tools_say_of_the_live_stacks(
    cases: tuple[str, dict[str, Stack]],
) -> None:
    _, stacks = cases
    assert render(stacks) == doc_table(), "\n".join(_explain(s) for s in stacks.values())


def test_a_stalled_stack_shows_the_operators_message_in_both(
    cases: tuple[str, dict[str, Stack]],
) -> None:
    namespace, stacks = cases
    stack = stacks["stalled"]
    (argo,), (flux,) = argocd_health([stack]), kstatus([stack])
    secret = f"Secret {namespace}/{ABSENT_SECRET}"
    assert argo.message.startswith(f"SecretNotFound: {secret}"), _explain(stack)
    assert flux.message.startswith(secret), _explain(stack)


def test_a_starting_stack_shows_what_it_waits_for(cases: tuple[str, dict[str, Stack]]) -> None:
    _, stacks = cases
    for case in ("new", "paused-starting"):
        stack = stacks[case]
        ready = condition(stack, "Ready") or {}
        waiting = condition(stack, "Reconciling") if case == "new" else ready
        (argo,), (flux,) = argocd_health([stack]), kstatus([stack])
        assert argo.message == (waiting or {}).get("message"), _explain(stack)
        assert flux.message == ready.get("message"), _explain(stack)
    assert (condition(stacks["paused-starting"], "Ready") or {})["message"].startswith(
        "spec.paused is true: children are left as they are; "
    )


def test_an_unseen_spec_change_names_both_generations(
    cases: tuple[str, dict[str, Stack]],
) -> None:
    _, stacks = cases
    stack = stacks["generation-ahead"]
    generation, observed = stack["metadata"]["generation"], stack["status"]["observedGeneration"]
    assert generation > observed, _explain(stack)
    # The conditions still say Ready, for the generation before.
    assert (condition(stack, "Ready") or {}).get("status") == "True", _explain(stack)
    (argo,), (flux,) = argocd_health([stack]), kstatus([stack])
    assert f"generation {generation} (last observed {observed})" in argo.message
    assert f"generation is {generation}, but latest observed generation is {observed}" in (
        flux.message
    )
    assert not stacks["unobserved"].get("status"), _explain(stacks["unobserved"])


def test_once_back_the_operator_catches_up_on_what_it_missed(
    cases: tuple[str, dict[str, Stack]], module_api: client.ApiClient
) -> None:
    namespace, _ = cases
    custom = client.CustomObjectsApi(module_api)
    for name in ("generation-ahead", "unobserved"):
        done: Stack = wait_for(
            lambda n=name: (s := get_stack(custom, namespace, n)) and is_ready(s) and s,
            timeout=90,
            what=f"{name} Ready after the operator came back",
        )
        (argo,), (flux,) = argocd_health([done]), kstatus([done])
        assert (argo.status, flux.status) == ("Healthy", "Current"), _explain(done)
