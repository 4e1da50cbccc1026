"""Fixtures of the chart tests: the built helm, and the chart rendered with given values.

Most of these tests need no cluster: only the helm binary that
``e2e/controlplane`` builds (cached), Debian's ``lua5.4`` and Prometheus's
``promtool``. ``argocd_health`` runs the Argo CD health check of docs/gitops.md
on any object, so tests on the cluster can feed it the stacks the operator wrote.
"""

from __future__ import annotations

import json
import re
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
GITOPS_DOC = REPO / "docs" / "gitops.md"
HEALTH_KEY = "resource.customizations.health.retention.dev_RetentionStack"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KUBE_VERSION = "1.34.0"
MONITORING_APIS = (
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
)

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]
ArgoHealth = Callable[[Manifest], tuple[str, str]]

# Argo CD runs the check as a chunk with the object in the global ``obj`` and
# reads the table it returns.
_LUA_RUNNER = """
local check = assert(load(io.open(arg[1]):read("a"), "health.lua"))
obj = {obj}
local hs = check()
io.write(hs.status, "\\t", hs.message or "")
"""


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
def lua() -> Path:
    """Debian's Lua 5.4 interpreter."""
    return _tool("lua5.4")


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


def argocd_health_lua() -> str:
    """The Lua of the argocd-cm example in docs/gitops.md: what users copy."""
    for block in re.findall(r"```yaml\n(.*?)```", GITOPS_DOC.read_text(), flags=re.S):
        doc = yaml.safe_load(block)
        if isinstance(doc, dict) and HEALTH_KEY in (doc.get("data") or {}):
            return str(doc["data"][HEALTH_KEY])
    raise AssertionError(f"no argocd-cm with {HEALTH_KEY} in {GITOPS_DOC}")


def _lua_literal(value: Any) -> str:
    """``value`` (parsed JSON or YAML) as a Lua constructor; null becomes nil as in Argo CD."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "{" + ", ".join(_lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        items = (f"[{json.dumps(str(k))}] = {_lua_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as Lua")


@pytest.fixture
def argocd_health(lua: Path, tmp_path: Path) -> ArgoHealth:
    """``argocd_health(obj)`` -> (status, message) of the docs/gitops.md check, run by lua5.4."""
    script = tmp_path / "health.lua"
    script.write_text(argocd_health_lua())

    def _health(obj: Manifest) -> tuple[str, str]:
        runner = tmp_path / "runner.lua"
        runner.write_text(_LUA_RUNNER.replace("{obj}", _lua_literal(obj)))
        out = subprocess.run(
            [str(lua), str(runner), str(script)], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        status, message = out.stdout.split("\t", 1)
        return status, message

    return _health
