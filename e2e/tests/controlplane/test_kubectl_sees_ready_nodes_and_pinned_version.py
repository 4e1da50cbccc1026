"""The built kubectl sees Ready nodes and the pinned server version."""

from __future__ import annotations

import json

import pytest

from harness.controlplane import REPO_ROOT, ControlPlane

pytestmark = pytest.mark.e2e


def _pinned_version() -> str:
    for line in (REPO_ROOT / "e2e/controlplane/versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("KUBERNETES_VERSION missing from versions.env")


def test_nodes_are_listed_ready(control_plane: ControlPlane) -> None:
    nodes = json.loads(control_plane.kubectl("get", "nodes", "-o", "json"))["items"]
    assert len(nodes) == 3
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]


def test_server_reports_the_pinned_version(control_plane: ControlPlane) -> None:
    version = json.loads(control_plane.kubectl("version", "-o", "json"))
    assert version["serverVersion"]["gitVersion"] == _pinned_version()
    assert version["clientVersion"]["gitVersion"] == _pinned_version()
