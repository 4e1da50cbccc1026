"""``helm install`` the chart, then run the operator as the chart's ServiceAccount.

KWOK runs no containers, so the chart's operator pod cannot do the work here:
the test takes a token for the chart's ServiceAccount from the TokenRequest
API and runs the operator process with it. Any call the operator needs that
the chart does not grant is refused (403) and fails the test. The session's
admin-credentialed operator is stopped meanwhile, so it cannot do the work
in its place.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, PrometheusServer, RedisServer
from harness.stacks import apply_ok, create_secret, get_stack, is_ready, stack_manifest, wait_for

from .conftest import CHART, run_helm

pytestmark = pytest.mark.e2e
RELEASE, SYSTEM = "retention-operator", "retention-system"
SA = "retention-operator"


def _sa_kubeconfig(cp: ControlPlane, core: client.CoreV1Api, path: Path) -> Path:
    token = core.create_namespaced_service_account_token(
        SA, SYSTEM, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    ca = base64.b64encode((cp.run_dir / "pki" / "ca.crt").read_bytes()).decode()
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": cp.server, "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": "chart-operator", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "chart-operator"}}],
                "current-context": "c",
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def installed(helm: Path, control_plane: ControlPlane) -> Iterator[str]:
    """The chart installed (CRD left to the session) into its own namespace."""
    result = run_helm(
        helm, "install", RELEASE, str(CHART), "--namespace", SYSTEM, "--create-namespace",
        "--kubeconfig", str(control_plane.kubeconfig), "--set", "crds.install=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    try:
        yield RELEASE
    finally:
        run_helm(
            helm, "uninstall", RELEASE, "-n", SYSTEM, "--kubeconfig", str(control_plane.kubeconfig)
        )


def test_chart_permissions_are_enough_to_reconcile_and_scale_a_stack(
    installed: str,
    operator: OperatorProcess,
    control_plane: ControlPlane,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
    prometheus: PrometheusServer,
    tmp_path: Path,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    kubeconfig = _sa_kubeconfig(control_plane, core, tmp_path / "chart-sa.kubeconfig")
    operator.stop()
    chart_operator = OperatorProcess(
        kubeconfig=kubeconfig,
        log_dir=tmp_path,
        env={
            "RETENTION_PROMETHEUS_URL": prometheus.url,
            "RETENTION_OPERATOR_NAMESPACE": SYSTEM,
        },
    )
    try:
        chart_operator.start()
        create_secret(core, namespace, postgres.password)
        apply_ok(
            control_plane,
            stack_manifest("rbac", namespace, postgres=postgres, redis=redis_standalone),
        )
        try:
            stack = wait_for(
                lambda: (s := get_stack(custom, namespace, "rbac")) and is_ready(s) and s,
                timeout=120,
                what="Ready under the chart's ServiceAccount",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\noperator log:\n{chart_operator.log_tail(40)}") from None
        # The autoscaler's first decisions land in status too.
        wait_for(
            lambda: (get_stack(custom, namespace, "rbac").get("status") or {}).get("autoscaling"),
            timeout=60,
            what="status.autoscaling",
        )
        unauthenticated = [
            line
            for line in chart_operator.metrics_text().splitlines()
            if line.startswith("retention_operator_kube_requests_total")
            and 'code="401"' in line
            and not line.endswith(" 0.0")
        ]
        assert not unauthenticated, unauthenticated
        # A 403 can also come from a namespace another test is deleting ("unable
        # to create new content in namespace ... because it is being terminated"),
        # so look for RBAC's own wording: '<user> cannot <verb> resource ...'.
        log = chart_operator.proc.log_path.read_text() if chart_operator.proc else ""
        denied = [
            line
            for line in log.splitlines()
            if re.search(r"cannot (get|list|watch|create|patch|update) resource", line)
        ]
        assert not denied, denied[:5]
        assert stack["status"]["observedGeneration"] == stack["metadata"]["generation"]
    finally:
        chart_operator.stop()
        operator.start()
