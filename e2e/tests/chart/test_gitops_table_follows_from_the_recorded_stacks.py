"""The table of docs/gitops.md is what the real tools say of the recorded stacks.

The fixtures under fixtures/status/ are stacks the operator wrote, recorded by
``make gitops-table``; here the kstatus library and the gopher-lua runner read
them again and the table must follow. The e2e test beside this file records
the cases anew and checks the same table against the live stacks. A fixture
field the CRD does not declare would be pruned by the API server, so the
fixtures are checked against its schema too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.gitops_table import CASES, FIXTURES, doc_table, load_fixtures, render

CRD = Path(__file__).resolve().parents[3] / "crds" / "retention.dev_retentionstacks.yaml"


def test_the_doc_table_is_what_the_tools_say_of_the_fixtures() -> None:
    assert render(load_fixtures()) == doc_table(), "run `make gitops-table`"


def test_every_fixture_is_a_case_of_the_table() -> None:
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == set(CASES)


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


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_fields_are_declared_by_the_crd(name: str) -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    obj = load_fixtures()[name]
    assert _undeclared(obj["spec"], schema["properties"]["spec"], "spec") == []
    assert _undeclared(obj.get("status", {}), schema["properties"]["status"], "status") == []
