"""The chart installs exactly the CRD in crds/, and keeps it on uninstall unless told not to."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
SOURCE = REPO / "crds" / "retention.dev_retentionstacks.yaml"
SYNC = REPO / "charts" / "retention-operator" / "hack" / "sync_crds.py"

Manifest = dict[str, Any]


def test_chart_template_is_the_current_copy_of_crds() -> None:
    out = subprocess.run(
        [sys.executable, str(SYNC), "--check"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr


def test_rendered_crd_equals_crds_apart_from_labels_and_keep(
    render: Callable[..., list[Manifest]],
) -> None:
    [crd] = [m for m in render() if m["kind"] == "CustomResourceDefinition"]
    source = yaml.safe_load(SOURCE.read_text())
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["name"] == source["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "retention-stack"


def test_crds_keep_false_drops_the_keep_policy(render: Callable[..., list[Manifest]]) -> None:
    [crd] = [m for m in render(sets=["crds.keep=false"]) if m["kind"] == "CustomResourceDefinition"]
    assert "annotations" not in crd["metadata"]
