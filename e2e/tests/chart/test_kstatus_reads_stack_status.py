"""kstatus (Flux, Helm 4 --wait) reads the stack status fixtures as the operator means them.

The same fixtures as the Argo CD health check; harness.kstatus ports the
generic kstatus rules. A fixture field the CRD does not declare would be
pruned by the API server, so the fixtures are checked against its schema too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.kstatus import Status, compute

REPO = Path(__file__).resolve().parents[3]
STATUS = Path(__file__).resolve().parent / "fixtures" / "status"
CRD = REPO / "crds" / "retention.dev_retentionstacks.yaml"

EXPECTED = {
    # No conditions at all read as Current: why the operator writes Ready at once.
    "unobserved": Status.CURRENT,
    "new": Status.IN_PROGRESS,
    "ready": Status.CURRENT,
    "stalled": Status.FAILED,
    # A paused stack whose components are ready does not hold a Kustomization back.
    "paused": Status.CURRENT,
    "generation-ahead": Status.IN_PROGRESS,
    "deleting": Status.TERMINATING,
}


def _load(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((STATUS / f"{name}.yaml").read_text())
    return obj


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_kstatus_of_each_stack_status(name: str) -> None:
    assert compute(_load(name)).status == EXPECTED[name]


def test_stalled_fails_with_the_operators_message() -> None:
    result = compute(_load("stalled"))
    assert result.message.startswith("Secret shop/orders-postgres")


def test_generation_ahead_names_both_generations() -> None:
    result = compute(_load("generation-ahead"))
    assert "generation is 3, but latest observed generation is 2" in result.message


def test_first_reconciling_or_stalled_condition_decides() -> None:
    obj = _load("stalled")
    conditions = obj["status"]["conditions"]
    reconciling = next(c for c in conditions if c["type"] == "Reconciling")
    reconciling["status"] = "True"
    # Reconciling comes before Stalled in the list the operator writes.
    assert compute(obj).status == Status.IN_PROGRESS


def test_ready_unknown_is_in_progress() -> None:
    obj = _load("ready")
    for cond in obj["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["status"] = "Unknown"
    assert compute(obj).status == Status.IN_PROGRESS


def _undeclared(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = []
        for key, sub in value.items():
            if props is not None and key in props:
                out += _undeclared(sub, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += _undeclared(sub, extra, f"{path}.{key}")
            elif props is not None:
                out.append(f"{path}.{key}")
        return out
    if isinstance(value, list) and "items" in schema:
        return [e for item in value for e in _undeclared(item, schema["items"], f"{path}[]")]
    return []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fields_are_declared_by_the_crd(name: str) -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = _load(name)
    assert _undeclared(obj["spec"], schema["properties"]["spec"], "spec") == []
    assert _undeclared(obj.get("status", {}), schema["properties"]["status"], "status") == []
