"""Fixtures of the chart tests: the built helm, and the chart rendered with given values.

Most of these tests need no cluster: only the helm binary that
``e2e/controlplane`` builds (cached) and Prometheus's ``promtool``. What Argo
CD and Flux say of a stack comes from :mod:`harness.gitops` (the project's
checkers on the real libraries), which the tests import directly.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.controlplane import build_binaries

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "retention-operator"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBE_VERSION = "1.34.0"
MONITORING_APIS = (
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="session")
def helm() -> Path:
    """Path of the helm binary built by e2e/controlplane (built once, then cached)."""
    return build_binaries() / "helm"


def _tool(name: str) -> Path:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make packages`")
    return Path(found)


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Prometheus's promtool (Debian package prometheus)."""
    return _tool("promtool")


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with ``args``; never raises on a non-zero exit."""
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def helm_run(helm: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``helm_run(*args)``: run the built helm and return the finished process."""
    return lambda *args: run_helm(helm, *args)


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """Render the chart: ``render(values_files, set_values, monitoring=False)`` -> manifests.

    Fails the test with helm's message when rendering fails.
    """

    def _render(
        values: Sequence[Path] = (),
        sets: Sequence[str] = (),
        *,
        monitoring: bool = False,
        namespace: str = "retention-system",
    ) -> list[Manifest]:
        args = ["template", "r", str(CHART), "--kube-version", KUBE_VERSION]
        args += ["--namespace", namespace]
        for path in values:
            args += ["-f", str(path)]
        for item in sets:
            args += ["--set", item]
        if monitoring:
            for api in MONITORING_APIS:
                args += ["--api-versions", api]
        out = run_helm(helm, *args)
        if out.returncode != 0:
            pytest.fail(f"helm template failed:\n{out.stderr}")
        return [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    return _render


RuleTests = Callable[[list[dict[str, Any]]], subprocess.CompletedProcess[str]]


@pytest.fixture
def promtool_test_rules(render: Render, promtool: Path, tmp_path: Path) -> RuleTests:
    """``promtool_test_rules(tests)``: ``promtool test rules`` of ``tests`` (promtool's test
    groups) over the PrometheusRule the chart renders, annotations left out (promtool
    compares them verbatim; what matters is when an alert fires)."""

    def run(tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        [rule] = [
            m
            for m in render(sets=["metrics.prometheusRule.enabled=true"], monitoring=True)
            if m["kind"] == "PrometheusRule"
        ]
        groups = [
            {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
            for g in rule["spec"]["groups"]
        ]
        (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
        body = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
        (tmp_path / "tests.yaml").write_text(yaml.safe_dump(body))
        return subprocess.run(
            [str(promtool), "test", "rules", "tests.yaml"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    return run
