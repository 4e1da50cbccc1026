"""Status conditions from component health: kstatus conventions, stable when nothing changed."""

from __future__ import annotations

from retention_operator.reconcile.status import (
    ComponentHealth,
    Problem,
    needs_write,
    status_patch,
    workload_health,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"
READY = {
    "api": ComponentHealth(2, 2),
    "workers": ComponentHealth(1, 1),
    "redis": ComponentHealth(None, None),
}


def _conditions(patch: dict[str, object]) -> dict[str, dict[str, object]]:
    return {c["type"]: c for c in patch["conditions"]}  # type: ignore[attr-defined, index]


def test_all_components_ready_means_ready_and_not_reconciling() -> None:
    patch = status_patch(
        previous={}, generation=3, components=READY, problem=None, paused=False, now=T0
    )
    conds = _conditions(patch)
    assert conds["Ready"]["status"] == "True"
    assert conds["Reconciling"]["status"] == "False"
    assert conds["Stalled"]["status"] == "False"
    assert patch["observedGeneration"] == 3
    assert patch["apiReplicas"] == 2 and patch["workerReplicas"] == 1


def test_a_component_not_ready_means_reconciling_with_its_message() -> None:
    components = {**READY, "api": ComponentHealth(2, 1, "Deployment x-api: 1/2 replicas ready")}
    conds = _conditions(
        status_patch(
            previous={}, generation=1, components=components, problem=None, paused=False, now=T0
        )
    )
    assert conds["Ready"]["status"] == "False"
    assert conds["Reconciling"]["status"] == "True"
    assert "1/2 replicas ready" in str(conds["Reconciling"]["message"])


def test_a_problem_stalls_and_names_the_reason() -> None:
    problem = Problem("SecretNotFound", "Secret ns/db does not exist")
    conds = _conditions(
        status_patch(
            previous={}, generation=1, components=READY, problem=problem, paused=False, now=T0
        )
    )
    assert conds["Stalled"] == {**conds["Stalled"], "status": "True", "reason": "SecretNotFound"}
    assert conds["Ready"]["status"] == "False"
    assert conds["Reconciling"]["status"] == "False"


def test_paused_is_reported_on_ready_and_reconciling() -> None:
    conds = _conditions(
        status_patch(previous={}, generation=1, components=READY, problem=None, paused=True, now=T0)
    )
    assert conds["Reconciling"]["reason"] == "Paused"
    assert conds["Ready"]["reason"] == "Paused"


def test_paused_reports_the_childrens_real_readiness() -> None:
    """Ready True only while the children are ready; otherwise False saying what waits."""
    ready = _conditions(
        status_patch(previous={}, generation=1, components=READY, problem=None, paused=True, now=T0)
    )
    assert (ready["Ready"]["status"], ready["Reconciling"]["status"]) == ("True", "False")
    waiting = {**READY, "api": ComponentHealth(2, 1, "Deployment x-api: 1/2 replicas ready")}
    conds = _conditions(
        status_patch(
            previous={}, generation=1, components=waiting, problem=None, paused=True, now=T0
        )
    )
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["message"] == (
        "spec.paused is true: children are left as they are; Deployment x-api: 1/2 replicas ready"
    )
    # Nothing is in progress: the operator acts on nothing while paused.
    assert conds["Reconciling"]["status"] == "False"
    assert conds["Stalled"]["status"] == "False"


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = status_patch(
        previous={}, generation=1, components=READY, problem=None, paused=False, now=T0
    )
    again = status_patch(
        previous=first, generation=1, components=READY, problem=None, paused=False, now=T1
    )
    assert _conditions(again)["Ready"]["lastTransitionTime"] == T0
    assert not needs_write(first, again)
    broken = {**READY, "api": ComponentHealth(2, 0, "0/2 ready")}
    later = status_patch(
        previous=first, generation=1, components=broken, problem=None, paused=False, now=T1
    )
    assert _conditions(later)["Ready"]["lastTransitionTime"] == T1
    assert needs_write(first, later)


def test_patch_carries_no_nulls_so_a_stored_status_compares_equal() -> None:
    patch = status_patch(
        previous={}, generation=None, components=READY, problem=None, paused=False, now=T0
    )
    assert "None" not in repr(patch)
    assert patch["components"]["redis"] == {"message": ""}  # type: ignore[index]


def test_workload_health_waits_for_the_controller_and_the_rollout() -> None:
    live = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3},
    }
    assert "not yet observed" in str(workload_health(live, what="d").message)
    live["status"] = {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1}
    assert "rolling out" in str(workload_health(live, what="d").message)
    live["status"] = {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 3}
    assert workload_health(live, what="d").healthy
    assert not workload_health(None, what="d").healthy
