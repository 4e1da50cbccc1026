"""Chart.yaml's Artifact Hub annotations say what the chart and the operator really ship.

Each annotation is tied to the fact it repeats: the images to the chart's
default image and the model's defaults, the CRD to the generated CRD, the
example to crds/samples/minimal.yaml, the license to pyproject.toml.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from retention_operator import model

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "retention-operator"
# The kinds Artifact Hub accepts in artifacthub.io/changes.
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def _annotation(key: str) -> Any:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return yaml.safe_load(chart["annotations"][f"artifacthub.io/{key}"])


def test_images_are_the_operator_and_the_defaults_every_stack_runs() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    images = {i["name"]: i["image"] for i in _annotation("images")}
    assert images == {
        "retention-operator": f"{values['image']['repository']}:{chart['appVersion']}",
        "redis": model.ManagedRedis.model_fields["image"].default,
        "pgbouncer": model.PgBouncerSpec.model_fields["image"].default,
    }


def test_crds_and_the_example_are_the_real_ones() -> None:
    crd = yaml.safe_load((REPO / "crds" / "retention.dev_retentionstacks.yaml").read_text())
    [declared] = _annotation("crds")
    assert declared["name"] == crd["metadata"]["name"]
    assert declared["kind"] == crd["spec"]["names"]["kind"]
    assert declared["version"] == crd["spec"]["versions"][0]["name"]
    sample = yaml.safe_load((REPO / "crds" / "samples" / "minimal.yaml").read_text())
    assert _annotation("crdsExamples") == [sample]


def test_license_and_changes_are_what_artifact_hub_reads() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _annotation("license") == project["license"]["text"]
    changes = _annotation("changes")
    assert changes and all(set(c) <= {"kind", "description", "links"} for c in changes)
    assert {c["kind"] for c in changes} <= CHANGE_KINDS
