"""The committed CRD is what the models generate, and it is a structural schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from retention_operator import crdgen, names
from retention_operator.model import RetentionStack

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / crdgen.CRD_FILE_NAME
SAMPLES = sorted((REPO / "crds" / "samples").glob("*.yaml"))


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every schema node (with its path) of an OpenAPI schema."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _nodes(node[key], f"{path}[{key}]")


def _schema() -> dict[str, Any]:
    return crdgen.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_committed_crd_equals_generated() -> None:
    assert CRD_PATH.read_text() == crdgen.render(), "crds/ is stale: run `make crds`"


def test_check_flag_fails_on_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "crd.yaml"
    assert crdgen.main(["--check", "--output", str(target)]) == 1
    assert crdgen.main(["--write", "--output", str(target)]) == 0
    assert crdgen.main(["--check", "--output", str(target)]) == 0


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_samples_validate_against_the_model(sample: Path) -> None:
    body = yaml.safe_load(sample.read_text())
    body["metadata"].setdefault("namespace", "default")
    stack = RetentionStack.model_validate(body)
    assert stack.kind == names.KIND
    assert stack.api_version == names.API_VERSION


def test_there_are_a_minimal_and_a_full_sample() -> None:
    assert {p.name for p in SAMPLES} >= {"minimal.yaml", "full.yaml"}


def test_schema_is_structural() -> None:
    for path, node in _nodes(_schema()):
        assert "$ref" not in node and "$defs" not in node, path
        assert "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(key, True), bool), path
        if "anyOf" in node:
            # The only union a structural schema allows here: int-or-string quantities.
            assert node.get("x-kubernetes-int-or-string") is True, path
        else:
            assert "type" in node, path
    assert "null" not in yaml.safe_dump(_schema()).replace("nullable", "")


def test_every_field_has_a_description() -> None:
    # kubectl explain prints these; list items and map values are described by
    # the field that holds them.
    missing = [
        path
        for path, node in _nodes(_schema())
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[items]", "[additionalProperties]"))
        and not node.get("description")
    ]
    assert missing == []


def test_spec_strings_and_lists_are_bounded_for_cel_cost() -> None:
    spec = _schema()["properties"]["spec"]
    for path, node in _nodes(spec):
        if node.get("type") == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node.get("type") == "array":
            assert "maxItems" in node, path
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def test_status_is_declared_so_it_is_not_pruned() -> None:
    status = _schema()["properties"]["status"]
    assert {"observedGeneration", "conditions", "components", "autoscaling"} <= set(
        status["properties"]
    )
    assert {"apiReplicas", "workerReplicas", "p95Milliseconds", "backlog"} <= set(
        status["properties"]
    )
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "lastTransitionTime",
        "observedGeneration",
    }
    components = status["properties"]["components"]["properties"]
    assert set(components) == {
        names.COMPONENT_API,
        names.COMPONENT_WORKERS,
        names.COMPONENT_REDIS,
        names.COMPONENT_PGBOUNCER,
        names.COMPONENT_PGBOUNCER_RO,
    }
    replicas = status["properties"]["pgbouncer"]["properties"]["readReplicas"]["items"]
    assert {"host", "port", "inReadPool", "lagSeconds"} <= set(replicas["properties"])


def test_names_subresource_and_printer_columns() -> None:
    spec = crdgen.crd()["spec"]
    assert spec["names"]["shortNames"] == [names.SHORT_NAME]
    assert spec["names"]["categories"] == [names.CATEGORY]
    version = spec["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["API"] == ".status.apiReplicas"
    assert columns["Workers"] == ".status.workerReplicas"
    assert columns["P95"] == ".status.p95Milliseconds"
    assert columns["Backlog"] == ".status.backlog"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_cel_rules_carry_messages_that_name_the_field() -> None:
    rules = [
        (path, rule)
        for path, node in _nodes(_schema())
        for rule in node.get("x-kubernetes-validations", [])
    ]
    assert len(rules) >= 10
    for path, rule in rules:
        assert rule["message"], path
        assert rule["rule"], path
    messages = " ".join(rule["message"] for _, rule in rules)
    for field in (
        "spec.api.minReplicas",
        "spec.workers.minReplicas",
        "spec.workers.autoscaling.targetDrainSeconds",
        "spec.workers.autoscaling.scaleToZero",
        "spec.api.autoscaling.fallbackReplicas",
        "spec.workers.autoscaling.fallbackReplicas",
        "spec.redis must set exactly one of managed or external",
        "spec.redis.managed.storage.size",
        "metadata.name",
    ):
        assert field in messages


def test_optional_spec_fields_read_by_cel_are_not_nullable() -> None:
    # CEL sees an explicit null as a present field of the wrong type; absent is
    # how the spec says "unset".
    spec = _schema()["properties"]["spec"]
    assert not [path for path, node in _nodes(spec) if node.get("nullable")]
