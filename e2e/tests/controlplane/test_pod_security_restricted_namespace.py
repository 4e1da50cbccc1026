"""Pod Security admission enforces `restricted` on a labelled namespace."""

from __future__ import annotations

import pytest
from kubernetes import client

pytestmark = pytest.mark.e2e


def _pod(
    name: str, security: dict[str, object], pod_security: dict[str, object]
) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "securityContext": pod_security,
            "containers": [
                {"name": "main", "image": "example.invalid/app:1", "securityContext": security}
            ],
        },
    }


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def test_privileged_pod_refused_restricted_pod_accepted(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.patch_namespace(
        namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_pod(namespace, _pod("bad", {"privileged": True}, {}))
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
    assert "restricted" in str(refused.value.body)

    created = core.create_namespaced_pod(
        namespace, _pod("good", RESTRICTED_CONTAINER, {"runAsUser": 10001})
    )
    assert created.metadata.name == "good"
