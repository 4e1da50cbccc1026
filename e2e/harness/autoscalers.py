"""The autoscalers a careful user would install instead of the operator's, run for real.

metrics-server (``metrics.k8s.io``, what the HPA's CPU target reads) is built
from its Go module by ``e2e/controlplane/build-autoscalers.sh`` into the binary
cache; only ``make autoscalers-test`` (and the closed-loop benchmark) asks for
it, so ``make test``'s cold path never builds it. It runs as a host process on
the real node's host address, with upstream's RBAC and APIService manifests
from the same module, and is registered behind the API server's aggregation
layer (``harness.controlplane``'s front-proxy flags, on every real-node
cluster): a Service without a selector whose Endpoints name the process's
address, which the API server dials itself (``--enable-aggregator-routing``).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness import pki as pki_mod
from harness.controlplane import REPO_ROOT, ControlPlane, run_build_script, write_kubeconfig
from harness.procs import Proc, free_port, start, wait_until

BUILD_SCRIPT = REPO_ROOT / "e2e" / "controlplane" / "build-autoscalers.sh"
METRICS_NAMESPACE = "kube-system"
METRICS_SERVICE = "metrics-server"
METRICS_API = "v1beta1.metrics.k8s.io"


def build(tool: str = "metrics-server") -> Path:
    """Build (or find cached) ``tool`` (``metrics-server``); return its folder."""
    return run_build_script(BUILD_SCRIPT, tool)


def _host_ip(cp: ControlPlane) -> str:
    if cp.node is None:
        raise RuntimeError(
            "the aggregation layer needs the real node's host address: "
            "start the control plane with real_node=True"
        )
    return cp.node.net.host_ip


def _apply(cp: ControlPlane, docs: list[dict[str, object]], path: Path) -> None:
    path.write_text(yaml.safe_dump_all(docs))
    cp.kubectl("apply", "-f", str(path))


def register(
    cp: ControlPlane, *, namespace: str, service: str, port: int, apiservice: Path | None = None
) -> None:
    """Point Service ``namespace/service`` (port 443) at ``port`` on the host address.

    No selector: the Endpoints are written here, since the backend is a host
    process, not a pod. ``apiservice`` (a manifest file) is applied after.
    """
    address = _host_ip(cp)
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": service, "namespace": namespace},
            "subsets": [
                {
                    "addresses": [{"ip": address}],
                    "ports": [{"name": "https", "port": port}],
                }
            ],
        },
    ]
    _apply(cp, docs, cp.run_dir / f"{service}-endpoints.yaml")
    if apiservice is not None:
        cp.kubectl("apply", "-f", str(apiservice))


def apiservice_available(cp: ControlPlane, name: str) -> bool:
    """True once APIService ``name`` reports Available=True."""
    out = cp.kubectl("get", "apiservice", name, "-o", "json", check=False)
    if not out:
        return False
    conditions = json.loads(out).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def start_metrics_server(cp: ControlPlane, bin_dir: Path) -> Proc:
    """Start metrics-server (from ``bin_dir``, see :func:`build`) against ``cp`` as its own
    ServiceAccount; return once its APIService is Available.

    Upstream's RBAC (``manifests/base/rbac.yaml``) grants the ServiceAccount
    ``kube-system/metrics-server`` what it needs; the process authenticates as
    that account with a client certificate of the cluster CA (its name is the
    account's user name), so it holds no more than upstream's pod would. It
    verifies the kubelets' serving certificates with the cluster CA and reads
    the front-proxy CA from ``extension-apiserver-authentication``. The
    process is recorded in ``cp``: ``cp.stop()`` stops it.
    """
    manifests = bin_dir / "manifests"
    address = _host_ip(cp)
    cp.kubectl("apply", "-f", str(manifests / "rbac.yaml"))
    pki = pki_mod.load(cp.run_dir / "pki")
    user = "system:serviceaccount:kube-system:metrics-server"
    leaf = pki_mod.issue(
        pki, "metrics-server-client", common_name=user, organization="system:serviceaccounts"
    )
    kubeconfig = cp.run_dir / "metrics-server.kubeconfig"
    write_kubeconfig(kubeconfig, server=cp.server, pki=pki, cert=leaf.cert, key=leaf.key)
    port = free_port()
    argv = [
        str(bin_dir / "metrics-server"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={address}",
        f"--secure-port={port}",
        f"--cert-dir={cp.run_dir / 'metrics-server-certs'}",
        f"--kubelet-certificate-authority={pki.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        "--metric-resolution=15s",
    ]
    proc = start("metrics-server", argv, log_dir=cp.run_dir / "logs")
    cp.record(proc)
    register(
        cp,
        namespace=METRICS_NAMESPACE,
        service=METRICS_SERVICE,
        port=port,
        apiservice=manifests / "apiservice.yaml",
    )
    wait_until(
        lambda: apiservice_available(cp, METRICS_API),
        what=f"APIService {METRICS_API} Available",
        timeout=120,
        proc=proc,
    )
    return proc
