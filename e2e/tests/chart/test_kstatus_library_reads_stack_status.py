"""The kstatus library (Flux, Helm 4 --wait) on the recorded stacks: the rules the table rests on.

``harness.gitops.kstatus`` is status.Compute of sigs.k8s.io/cli-utils itself.
These tests pin what the operator relies on: the message Flux shows, and the
order in which the library weighs generation, Reconciling, Stalled and Ready.
"""

from __future__ import annotations

import copy
from typing import Any

from harness.gitops import kstatus
from harness.gitops_table import load_fixtures


def _one(obj: dict[str, Any]) -> tuple[str, str]:
    (verdict,) = kstatus([obj])
    return verdict.status, verdict.message


def _set(obj: dict[str, Any], type_: str, status: str) -> None:
    for cond in obj["status"]["conditions"]:
        if cond["type"] == type_:
            cond["status"] = status


def test_a_stalled_stack_fails_with_the_operators_message() -> None:
    status, message = _one(load_fixtures()["stalled"])
    assert status == "Failed"
    assert message.startswith("Secret shop/absent-credentials"), message


def test_a_paused_stack_waiting_on_children_shows_what_waits() -> None:
    stack = load_fixtures()["paused-starting"]
    ready = next(c for c in stack["status"]["conditions"] if c["type"] == "Ready")
    assert _one(stack) == ("InProgress", ready["message"])
    assert ready["message"].startswith("spec.paused is true: children are left as they are; ")


def test_an_unseen_generation_outranks_stalled() -> None:
    stack = copy.deepcopy(load_fixtures()["stalled"])
    stack["metadata"]["generation"] += 1
    status, message = _one(stack)
    assert status == "InProgress"
    assert message.endswith(
        f"generation is {stack['metadata']['generation']}, "
        f"but latest observed generation is {stack['status']['observedGeneration']}"
    )


def test_the_first_true_of_reconciling_and_stalled_decides() -> None:
    stack = copy.deepcopy(load_fixtures()["stalled"])
    _set(stack, "Reconciling", "True")
    # The operator lists Reconciling before Stalled.
    assert _one(stack)[0] == "InProgress"
    stack["status"]["conditions"].reverse()
    assert _one(stack)[0] == "Failed"


def test_ready_unknown_is_in_progress_and_no_conditions_is_current() -> None:
    stack = copy.deepcopy(load_fixtures()["ready"])
    _set(stack, "Ready", "Unknown")
    assert _one(stack)[0] == "InProgress"
    del stack["status"]["conditions"]
    assert _one(stack) == ("Current", "Resource is current")
