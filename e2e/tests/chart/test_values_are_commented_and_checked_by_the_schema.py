"""Every value is commented and known to values.schema.json; values that break it are refused."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "retention-operator"
VALUES = CHART / "values.yaml"
SCHEMA = CHART / "values.schema.json"

HelmRun = Callable[..., subprocess.CompletedProcess[str]]
# Maps whose keys are the user's (labels, Kubernetes objects), commented as one value.
FREE_FORM = (
    "labels",
    "annotations",
    "nodeSelector",
    "affinity",
    "resources",
    "podSecurityContext",
    "securityContext",
)
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][\w-]*):")


def _leaves(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            # A mapping of values (crds, image, ...), not a free-form map (labels).
            if path.endswith(FREE_FORM):
                yield path
            else:
                yield from _leaves(value, path + ".")
        else:
            yield path


def test_every_value_has_a_comment_above_it() -> None:
    lines = VALUES.read_text().splitlines()
    stack: list[tuple[int, str]] = []
    commented: set[str] = set()
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match or line.lstrip().startswith("-"):
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [match["key"]])
        stack.append((indent, match["key"]))
        if number > 0 and lines[number - 1].strip().startswith("#"):
            commented.add(path)
    values = yaml.safe_load(VALUES.read_text())
    missing = [leaf for leaf in _leaves(values) if leaf not in commented]
    assert not missing, f"values without a comment: {missing}"


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        paths.add(prefix + key)
        paths |= _schema_paths(sub, f"{prefix}{key}.")
    return paths


def _value_paths(tree: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        paths.add(prefix + key)
        if isinstance(value, dict) and not key.endswith(FREE_FORM):
            paths |= _value_paths(value, f"{prefix}{key}.")
    return paths


def test_schema_describes_exactly_the_values() -> None:
    schema = json.loads(SCHEMA.read_text())
    values = yaml.safe_load(VALUES.read_text())
    assert schema["additionalProperties"] is False
    in_schema = _schema_paths(schema) - {"global"}
    in_values = _value_paths(values)
    assert in_values - in_schema == set(), "values the schema does not know"
    assert {p for p in in_schema - in_values if not p.startswith("resources.")} == set(), (
        "schema entries with no value"
    )


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("unknownValue=1", "additional properties 'unknownValue' not allowed"),
        ("crds.install=maybe", "/crds/install"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("image.digest=latest", "/image/digest"),
        ("watchNamespaces[0]=Team_A", "/watchNamespaces/0"),
        ("peering.replicas=1", "/peering/replicas"),
        ("peering.enable=true", "additional properties 'enable' not allowed"),
        ("logFormat=xml", "/logFormat"),
        ("autoscaler.tickSeconds=0", "/autoscaler/tickSeconds"),
        ("autoscaler.prometheusUrl=prometheus:9090", "/autoscaler/prometheusUrl"),
        ("metrics.port=8081", "/metrics/port"),
        ("metrics.podMonitor.interval=30", "/metrics/podMonitor/interval"),
        ("metrics.prometheusRule.backlogGrowing.minimum=-1", "backlogGrowing/minimum"),
        ("grafana.dashboard.enabled=yes", "/grafana/dashboard/enabled"),
    ],
)
def test_values_that_break_the_schema_are_refused(
    helm_run: HelmRun, setting: str, complaint: str
) -> None:
    flag = "--set-string" if setting.endswith(("=maybe", "=yes")) else "--set"
    out = helm_run("template", "r", str(CHART), "--kube-version", "1.34.0", flag, setting)
    assert out.returncode != 0, f"{setting} was accepted"
    assert "values don't meet the specifications of the schema" in out.stderr
    assert complaint in out.stderr, out.stderr
