"""RBAC is on: a ServiceAccount with no bindings is refused."""

from __future__ import annotations

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane

pytestmark = pytest.mark.e2e


def test_token_of_unbound_serviceaccount_gets_403(
    api_client: client.ApiClient, control_plane: ControlPlane, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, {"spec": {"audiences": [], "expirationSeconds": 600}}
    ).status.token

    cfg = client.Configuration()
    cfg.host = control_plane.server
    cfg.ssl_ca_cert = str(control_plane.run_dir / "pki" / "ca.crt")
    cfg.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(cfg) as as_sa, pytest.raises(client.ApiException) as refused:
        client.CoreV1Api(as_sa).list_namespaced_pod(namespace)
    assert refused.value.status == 403
    assert f"system:serviceaccount:{namespace}:nobody" in str(refused.value.body)


def test_impersonated_serviceaccount_cannot_create_deployments(
    control_plane: ControlPlane, namespace: str
) -> None:
    answer = control_plane.kubectl(
        "auth",
        "can-i",
        "create",
        "deployments",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:default",
        check=False,
    )
    assert answer.strip() == "no"
