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

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from harness import pki as pki_mod
from harness.controlplane import REPO_ROOT, ControlPlane, run_build_script, write_kubeconfig
from harness.procs import Proc, free_port, start, wait_until

BUILD_SCRIPT = REPO_ROOT / "e2e" / "controlplane" / "build-autoscalers.sh"
METRICS_NAMESPACE = "kube-system"
METRICS_SERVICE = "metrics-server"
METRICS_API = "v1beta1.metrics.k8s.io"


def build(tool: str = "metrics-server") -> Path:
    """Build (or find cached) ``tool`` (``metrics-server`` or ``keda``); return its folder."""
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


KEDA_NAMESPACE = "keda"
KEDA_SERVICE_ACCOUNT = "keda-operator"
KEDA_OPERATOR_SERVICE = "keda-operator"
KEDA_METRICS_SERVICE = "keda-metrics-apiserver"
KEDA_API = "v1beta1.external.metrics.k8s.io"


@dataclass
class Keda:
    """KEDA's operator and metrics API server, running against one control plane."""

    operator: Proc
    adapter: Proc
    version: str


def _service_names(service: str) -> tuple[str, ...]:
    # What KEDA's own certificate manager puts in its certificate (getDNSNames).
    ns = KEDA_NAMESPACE
    return (service, f"{service}.{ns}", f"{service}.{ns}.svc", f"{service}.{ns}.svc.cluster.local")


def _keda_certs(cp: ControlPlane) -> Path:
    """The certificates KEDA's chart has cert-manager issue when KEDA's own rotation is off.

    One pair serves the operator's gRPC metrics service and the metrics API
    server and authenticates the metrics API server to the operator (mutual
    TLS, both read ``ca.crt``, ``tls.crt`` and ``tls.key`` from one folder).
    KEDA's rotation cannot run outside a pod: it writes a Secret and exits
    for the kubelet to mount it and restart the container.
    """
    pki = pki_mod.load(cp.run_dir / "pki")
    names = _service_names(KEDA_OPERATOR_SERVICE) + _service_names(KEDA_METRICS_SERVICE)
    leaf = pki_mod.issue(
        pki,
        "keda",
        common_name=KEDA_OPERATOR_SERVICE,
        server=True,
        client_too=True,
        dns=names,
        ips=("127.0.0.1", _host_ip(cp)),
    )
    certs = cp.run_dir / "keda-certs"
    certs.mkdir(parents=True, exist_ok=True)
    for source, name in ((pki.ca_cert, "ca.crt"), (leaf.cert, "tls.crt"), (leaf.key, "tls.key")):
        (certs / name).write_bytes(source.read_bytes())
    return certs


def _keda_kubeconfig(cp: ControlPlane) -> Path:
    pki = pki_mod.load(cp.run_dir / "pki")
    user = f"system:serviceaccount:{KEDA_NAMESPACE}:{KEDA_SERVICE_ACCOUNT}"
    leaf = pki_mod.issue(
        pki, "keda-client", common_name=user, organization="system:serviceaccounts"
    )
    kubeconfig = cp.run_dir / "keda.kubeconfig"
    write_kubeconfig(kubeconfig, server=cp.server, pki=pki, cert=leaf.cert, key=leaf.key)
    return kubeconfig


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_keda(cp: ControlPlane, bin_dir: Path) -> Keda:
    """Start KEDA's operator and metrics API server (from ``bin_dir``, see :func:`build`)
    against ``cp``; return once ``external.metrics.k8s.io`` is Available.

    Applied from the module (``build-autoscalers.sh keda`` copies them): the
    CRDs, the ``keda`` namespace, the ServiceAccount ``keda/keda-operator`` and
    upstream's RBAC for both processes (``config/rbac``, ``config/metrics-server``),
    and upstream's APIService with the ``caBundle`` of :func:`_keda_certs`
    (what cert-manager's injector would write). Both processes authenticate as
    that ServiceAccount with a client certificate of the cluster CA, so they hold
    no more than upstream's pods. The operator runs with upstream's flags except
    that it is not elected (one process, no kubelet to restart it when it loses a
    lease) and its certificate rotation is off; the
    metrics API server dials the operator's gRPC service on loopback with the
    authority of its Service name. Both processes are recorded in ``cp``.
    """
    address = _host_ip(cp)
    for crd in sorted((bin_dir / "crds").glob("*.yaml")):
        cp.kubectl("apply", "--server-side", "-f", str(crd))
    manifests = bin_dir / "manifests"
    for name in (
        "general-namespace.yaml",
        "service_account-service_account.yaml",
        "rbac-role.yaml",
        "rbac-role_binding.yaml",
        "metrics-server-role.yaml",
        "metrics-server-role_binding.yaml",
    ):
        cp.kubectl("apply", "-f", str(manifests / name))
    certs = _keda_certs(cp)
    kubeconfig = _keda_kubeconfig(cp)
    env = {
        "KUBECONFIG": str(kubeconfig),
        "POD_NAMESPACE": KEDA_NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
        "WATCH_NAMESPACE": "",
    }
    grpc, probe, metrics, adapter_port, adapter_metrics = (free_port() for _ in range(5))
    operator_argv = [
        str(bin_dir / "keda"),
        f"--kubeconfig={kubeconfig}",
        # Upstream runs one replica with --leader-elect and exits when it cannot renew
        # its lease in time, for the kubelet to restart it. On a loaded machine the API
        # server is that slow now and then, and a host process has no kubelet: it
        # stopped for good mid-run. One process with no standby needs no election.
        "--leader-elect=false",
        "--zap-log-level=info",
        "--zap-encoder=console",
        "--zap-time-encoding=rfc3339",
        "--enable-cert-rotation=false",
        f"--cert-dir={certs}",
        f"--metrics-bind-address=127.0.0.1:{metrics}",
        f"--health-probe-bind-address=127.0.0.1:{probe}",
        f"--metrics-service-bind-address=127.0.0.1:{grpc}",
        f"--ca-dir={certs}",
    ]
    operator = start("keda-operator", operator_argv, log_dir=cp.run_dir / "logs", env=env)
    cp.record(operator)
    wait_until(
        lambda: _ready(f"http://127.0.0.1:{probe}/readyz"),
        what="KEDA operator /readyz",
        timeout=120,
        proc=operator,
    )
    adapter_argv = [
        str(bin_dir / "keda-adapter"),
        f"--kubeconfig={kubeconfig}",
        f"--lister-kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--bind-address={address}",
        f"--secure-port={adapter_port}",
        f"--port={adapter_metrics}",
        f"--cert-dir={certs}",
        f"--tls-cert-file={certs / 'tls.crt'}",
        f"--tls-private-key-file={certs / 'tls.key'}",
        f"--client-ca-file={certs / 'ca.crt'}",
        f"--metrics-service-address=127.0.0.1:{grpc}",
        f"--metrics-service-grpc-authority={_service_names(KEDA_OPERATOR_SERVICE)[-1]}",
        "--zap-log-level=info",
    ]
    adapter = start("keda-adapter", adapter_argv, log_dir=cp.run_dir / "logs", env=env)
    cp.record(adapter)
    apiservice = yaml.safe_load((manifests / "metrics-server-api_service.yaml").read_text())
    apiservice["spec"]["caBundle"] = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
    path = cp.run_dir / "keda-apiservice.yaml"
    path.write_text(yaml.safe_dump(apiservice))
    register(
        cp,
        namespace=KEDA_NAMESPACE,
        service=KEDA_METRICS_SERVICE,
        port=adapter_port,
        apiservice=path,
    )
    wait_until(
        lambda: apiservice_available(cp, KEDA_API),
        what=f"APIService {KEDA_API} Available",
        timeout=180,
        proc=adapter,
    )
    # build-autoscalers.sh names the folder keda-<version>.
    return Keda(operator=operator, adapter=adapter, version=bin_dir.name.removeprefix("keda-"))
