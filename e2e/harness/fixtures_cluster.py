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
from kubernetes import client, config

from harness.controlplane import ControlPlane, start_control_plane
from harness.leaks import SessionRecorder
from harness.operator import OperatorProcess
from harness.prometheus_server import PrometheusServer


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane with three Ready KWOK nodes.

    Its teardown runs the secret sweep (``harness.leaks``): once every test
    that used it is done and their operators have stopped, the session fails
    if any Secret value seen in the cluster appears in an operator log, an
    Event, a stack's status or annotations, or a child the operator made.
    """
    cp = start_control_plane(tmp_path_factory.mktemp("controlplane"))
    recorder = SessionRecorder(cp.kubeconfig)
    recorder.start()
    try:
        yield cp
        leaked = recorder.leaks(tmp_path_factory.getbasetemp())
        print(
            f"\nsecret sweep: {len(recorder.secrets)} Secret values looked for in "
            f"{len(recorder.writings)} objects and the operator logs; {len(leaked)} found"
        )
        if leaked:
            pytest.fail("Secret values where they must not be:\n" + "\n".join(leaked[:50]))
    finally:
        recorder.stop()
        cp.stop()


@pytest.fixture
def api_client(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient with the admin kubeconfig."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()


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


CRD_PATH = Path(__file__).resolve().parents[2] / "crds" / "retention.dev_retentionstacks.yaml"


@pytest.fixture(scope="session")
def crd_installed(control_plane: ControlPlane) -> str:
    """The RetentionStack CRD applied from crds/ and Established; returns its name."""
    control_plane.kubectl("apply", "--server-side", "-f", str(CRD_PATH))
    name = "retentionstacks.retention.dev"
    control_plane.wait_established(name)
    return name


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane,
    crd_installed: str,
    prometheus: PrometheusServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator as a subprocess with the admin kubeconfig, for the whole session.

    Its autoscaler ticks every second and reads the harness Prometheus, so the
    reconcile tests and the autoscaling tests share one operator.
    """
    del crd_installed
    proc = OperatorProcess(
        kubeconfig=control_plane.kubeconfig,
        log_dir=tmp_path_factory.mktemp("operator"),
        env={"RETENTION_PROMETHEUS_URL": prometheus.url},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
