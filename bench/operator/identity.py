"""The operator's own identity in the benchmark: the chart's ServiceAccount, counted by APF.

The operator runs as the chart's ServiceAccount (``helm install``, CRD left
out), with a token from the TokenRequest API, so it has exactly the chart's
permissions and, like any ServiceAccount, is subject to the API server's
priority and fairness (the admin certificate would be exempt). A FlowSchema
of its own puts every request of that identity (kopf's watches and patches
as well as the kube layer's calls) in the ``workload-low`` level, where a
ServiceAccount lands by default, and the API server's
``apiserver_flowcontrol_dispatched_requests_total{flow_schema=...}`` counts
them: the figure of requests at rest covers the whole process, not only what
the operator counts itself.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.controlplane import REPO_ROOT, ControlPlane

RELEASE, NAMESPACE = "retention-operator", "retention-system"
SERVICE_ACCOUNT = "retention-operator"
FLOW_SCHEMA = "retention-operator-bench"
_DISPATCHED = re.compile(
    r"^apiserver_flowcontrol_dispatched_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.M
)


def install_chart(cp: ControlPlane) -> None:
    """``helm install`` the chart without its CRD (applied before).

    Its operator pod lands on a KWOK node, which runs no container: the
    benchmark's operator process is the one doing the work.
    """
    subprocess.run(
        [
            str(cp.bin_dir / "helm"),
            "install",
            RELEASE,
            str(REPO_ROOT / "charts" / "retention-operator"),
            "--namespace",
            NAMESPACE,
            "--create-namespace",
            "--kubeconfig",
            str(cp.kubeconfig),
            "--set",
            "crds.install=false",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def flow_schema() -> dict[str, Any]:
    """Every request of the chart's ServiceAccount, in workload-low, under a name of its own."""
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": FLOW_SCHEMA},
        "spec": {
            "priorityLevelConfiguration": {"name": "workload-low"},
            # Before "service-accounts" (9000), after the system's own schemas.
            "matchingPrecedence": 8000,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE},
                        }
                    ],
                    "resourceRules": [
                        {**everything, "clusterScope": True, "namespaces": ["*"]},
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


def operator_kubeconfig(cp: ControlPlane, path: Path) -> Path:
    """A kubeconfig with a one-hour token of the chart's ServiceAccount."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    with admin_client(cp) as http:
        response = http.post(
            f"{cp.server}/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{SERVICE_ACCOUNT}/token",
            json=request,
        )
        response.raise_for_status()
        token = response.json()["status"]["token"]
    ca = base64.b64encode((cp.run_dir / "pki" / "ca.crt").read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": cp.server, "certificate-authority-data": ca}}
        ],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "operator"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def admin_client(cp: ControlPlane) -> httpx.Client:
    """An httpx client with the admin certificate (for the benchmark's own reads)."""
    pki = cp.run_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return httpx.Client(verify=ctx, timeout=60)


def dispatched(http: httpx.Client, server: str) -> int:
    """Requests of the operator's identity the API server has dispatched so far."""
    text = http.get(f"{server}/metrics", timeout=120).text
    total = 0.0
    for labels, value in _DISPATCHED.findall(text):
        if f'flow_schema="{FLOW_SCHEMA}"' in labels:
            total += float(value)
    return int(total)


def apply_json(cp: ControlPlane, manifest: dict[str, Any]) -> None:
    """Server-side apply one manifest with kubectl (as the benchmark's admin)."""
    path = cp.run_dir / f"bench-{manifest['metadata']['name']}.json"
    path.write_text(json.dumps(manifest))
    cp.kubectl("apply", "--server-side", "-f", str(path))
