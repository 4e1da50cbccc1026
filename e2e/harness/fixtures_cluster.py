"""pytest fixtures for the local Kubernetes control plane.

``control_plane`` is session-scoped: one control plane per test run, started
in a temporary directory and stopped at the end. ``namespace`` gives each test
a namespace of its own and deletes it afterwards.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.controlplane import ControlPlane, start_control_plane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane with three Ready KWOK nodes."""
    cp = start_control_plane(tmp_path_factory.mktemp("controlplane"))
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def kubeconfig(control_plane: ControlPlane) -> Path:
    """Path of the admin kubeconfig of the session's control plane."""
    return control_plane.kubeconfig


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    control_plane.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
