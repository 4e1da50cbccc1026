"""A real Kubernetes control plane as local processes, with KWOK as the nodes.

etcd, kube-apiserver (RBAC on, client-certificate admin in system:masters,
service-account signing keys), kube-controller-manager, kube-scheduler and
kwok run as subprocesses on 127.0.0.1 with free ports. KWOK plays the
kubelet: scheduled pods become Running without containers. This is the same
shape as controller-runtime's envtest plus the controller manager, scheduler
and fake nodes, so Deployments really become ReplicaSets and Running Pods.

Callers: the pytest fixtures (``fixtures_cluster``) and the CLI (``make
cluster-up`` / ``make demo``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from harness import pki as pki_mod
from harness.procs import Proc, free_port, start, stop_group, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "e2e" / "controlplane" / "build.sh"
SERVICE_CIDR = "10.0.0.0/24"
# Pod and node IPs live in the loopback range, so anything that connects to a
# KWOK pod (the Redis Cluster bootstrap, say) reaches this machine only and is
# refused at once, instead of sending packets to a private network.
POD_CIDR = "127.64.0.1/16"
NODE_IP = "127.0.0.1"
NODE_COUNT = 3


def build_binaries() -> Path:
    """Build (or find cached) control-plane binaries and return their directory.

    Runs ``e2e/controlplane/build.sh``, whose progress goes to stderr and whose
    last line is ``BIN_DIR=<path>``. Raises CalledProcessError if the build fails.
    """
    env_dir = os.environ.get("RETENTION_BIN_DIR")
    if env_dir:
        return Path(env_dir)
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    last = out.strip().splitlines()[-1]
    if not last.startswith("BIN_DIR="):
        raise RuntimeError(f"build.sh printed no BIN_DIR line: {out!r}")
    return Path(last.removeprefix("BIN_DIR="))


@dataclass
class ControlPlane:
    """A running control plane: where its kubeconfig is and what to stop."""

    run_dir: Path
    bin_dir: Path
    kubeconfig: Path
    server: str
    pids: dict[str, int] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list, repr=False)

    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.json"

    def kubectl_run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this control plane; the caller checks the result."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """Run the built kubectl against this control plane and return its stdout."""
        proc = self.kubectl_run(*args, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def wait_established(self, *crds: str, timeout: float = 60) -> None:
        """Wait until every CRD named in ``crds`` is Established.

        Polls the condition rather than ``kubectl wait``, which fails at once
        ("accessor error") on a CRD whose status has no conditions yet.
        Raises NotReady naming the CRDs still waiting.
        """
        path = '{.status.conditions[?(@.type=="Established")].status}'

        def established() -> bool:
            return all(
                self.kubectl("get", "crd", crd, "-o", f"jsonpath={path}", check=False) == "True"
                for crd in crds
            )

        wait_until(established, what=f"CRDs {', '.join(crds)} Established", timeout=timeout)

    def save(self) -> None:
        """Write the state file that ``load`` and ``stop`` read (for the CLI)."""
        data = {
            "run_dir": str(self.run_dir),
            "bin_dir": str(self.bin_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "pids": self.pids,
        }
        self.state_path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> ControlPlane | None:
        """Return the control plane recorded in ``run_dir``, or None if there is none."""
        path = run_dir / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(
            run_dir=Path(data["run_dir"]),
            bin_dir=Path(data["bin_dir"]),
            kubeconfig=Path(data["kubeconfig"]),
            server=data["server"],
            pids={k: int(v) for k, v in data["pids"].items()},
        )

    def healthy(self) -> bool:
        """Return True if every recorded process is alive and /readyz answers ok."""
        for pid in self.pids.values():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
        try:
            return _api_get(self.run_dir / "pki", self.server, "/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop every process group of the control plane, newest first, and forget it."""
        for name, pid in reversed(list(self.pids.items())):
            stop_group(pid, timeout=10 if name != "etcd" else 5)
        for proc in self.procs:
            proc.stop(timeout=1)
        self.state_path.unlink(missing_ok=True)


def _client(pki_dir: Path) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    ctx.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    return httpx.Client(verify=ctx, timeout=5)


def _api_get(pki_dir: Path, server: str, path: str) -> httpx.Response:
    with _client(pki_dir) as client:
        return client.get(server + path)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, *, server: str, pki: pki_mod.Pki) -> None:
    """Write a self-contained admin kubeconfig (certificates embedded)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "retention-local",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(pki.ca_cert),
                },
            }
        ],
        "users": [
            {
                "name": "retention-admin",
                "user": {
                    "client-certificate-data": _b64(pki.admin_cert),
                    "client-key-data": _b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {
                "name": "retention-local",
                "context": {"cluster": "retention-local", "user": "retention-admin"},
            }
        ],
        "current-context": "retention-local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _start_etcd(bin_dir: Path, run_dir: Path) -> tuple[Proc, str]:
    client_port, peer_port = free_port(), free_port()
    url = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    proc = start(
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=default",
            f"--data-dir={run_dir / 'etcd-data'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--listen-metrics-urls=",
            # Tests throw the data away; fsync only slows them down.
            "--unsafe-no-fsync=true",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
        log_dir=run_dir / "logs",
    )
    wait_until(
        lambda: httpx.get(f"{url}/health", timeout=2).json().get("health") == "true",
        what="etcd /health",
        timeout=30,
        proc=proc,
    )
    return proc, url


def _start_apiserver(
    bin_dir: Path, run_dir: Path, pki: pki_mod.Pki, etcd_url: str
) -> tuple[Proc, str]:
    port = free_port()
    server = f"https://127.0.0.1:{port}"
    proc = start(
        "kube-apiserver",
        [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            # Mandatory on a machine without a default route.
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            # A loopback address is not valid in Endpoints.
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={run_dir / 'pki'}",
            "--v=1",
        ],
        log_dir=run_dir / "logs",
    )
    wait_until(
        lambda: _api_get(run_dir / "pki", server, "/readyz").status_code == 200,
        what="kube-apiserver /readyz",
        timeout=90,
        proc=proc,
    )
    return proc, server


def _start_component(name: str, argv: list[str], run_dir: Path) -> Proc:
    port = free_port()
    proc = start(
        name,
        [*argv, "--bind-address=127.0.0.1", f"--secure-port={port}", "--v=1"],
        log_dir=run_dir / "logs",
    )
    # /healthz is always allowed anonymously; the serving cert is self-signed.
    wait_until(
        lambda: (
            httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2).status_code  # noqa: S501
            == 200
        ),
        what=f"{name} /healthz",
        timeout=60,
        proc=proc,
    )
    return proc


def _node_manifest(index: int) -> dict[str, object]:
    name = f"kwok-node-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                "topology.kubernetes.io/zone": f"zone-{index % 3}",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }


def _nodes_ready(cp: ControlPlane, count: int) -> bool:
    data = json.loads(cp.kubectl("get", "nodes", "-o", "json"))
    ready = [
        item
        for item in data["items"]
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in item.get("status", {}).get("conditions", [])
        )
    ]
    return len(ready) >= count


def _default_sa_exists(cp: ControlPlane) -> bool:
    return (
        cp.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).strip() != ""
    )


def start_control_plane(
    run_dir: Path, *, nodes: int = NODE_COUNT, bin_dir: Path | None = None
) -> ControlPlane:
    """Start etcd, the API server, controller manager, scheduler and KWOK with ``nodes`` nodes.

    Returns once the API server is ready, the default ServiceAccount exists and
    every node is Ready. On failure, stops whatever it started and re-raises
    (the NotReady message carries the failing server's log tail).
    """
    bin_dir = bin_dir or build_binaries()
    run_dir.mkdir(parents=True, exist_ok=True)
    # A new control plane starts empty: objects of an earlier run stay out.
    shutil.rmtree(run_dir / "etcd-data", ignore_errors=True)
    began = time.monotonic()
    pki = pki_mod.create(run_dir / "pki")
    kubeconfig = run_dir / "kubeconfig"
    cp = ControlPlane(run_dir=run_dir, bin_dir=bin_dir, kubeconfig=kubeconfig, server="")
    try:
        etcd, etcd_url = _start_etcd(bin_dir, run_dir)
        cp.procs.append(etcd)
        api, cp.server = _start_apiserver(bin_dir, run_dir, pki, etcd_url)
        cp.procs.append(api)
        write_kubeconfig(kubeconfig, server=cp.server, pki=pki)
        common = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
        ]
        cp.procs.append(
            _start_component(
                "kube-controller-manager",
                [
                    str(bin_dir / "kube-controller-manager"),
                    *common,
                    # Endpoints cannot hold the loopback pod IPs KWOK hands out,
                    # and nothing here routes Service traffic: leave them out.
                    "--controllers=*,-endpoints-controller,-endpointslice-controller,"
                    "-endpointslice-mirroring-controller",
                    "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={pki.sa_key}",
                    f"--root-ca-file={pki.ca_cert}",
                    f"--service-cluster-ip-range={SERVICE_CIDR}",
                    # Quick reaction keeps e2e tests short.
                    "--concurrent-deployment-syncs=10",
                    "--concurrent-replicaset-syncs=10",
                ],
                run_dir,
            )
        )
        cp.procs.append(
            _start_component("kube-scheduler", [str(bin_dir / "kube-scheduler"), *common], run_dir)
        )
        kwok = start(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={kubeconfig}",
                "--manage-all-nodes=true",
                "--node-lease-duration-seconds=40",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
                f"--server-address=127.0.0.1:{free_port()}",
                # With no Stage configured, kwok applies its built-in fast node
                # and pod stages: nodes go Ready, scheduled pods go Running.
            ],
            log_dir=run_dir / "logs",
        )
        cp.procs.append(kwok)
        cp.pids = {p.name: p.pid for p in cp.procs}
        _create_nodes(cp, nodes)
        wait_until(lambda: _nodes_ready(cp, nodes), what="nodes Ready", timeout=60, proc=kwok)
        wait_until(lambda: _default_sa_exists(cp), what="default ServiceAccount", timeout=60)
        cp.save()
    except BaseException:
        cp.stop()
        raise
    (run_dir / "startup-seconds").write_text(f"{time.monotonic() - began:.1f}\n")
    return cp


PV_COUNT = 200
STORAGE_CLASS = "standard"


def _storage_manifests() -> list[dict[str, object]]:
    """A default StorageClass and pre-made volumes, since KWOK has no provisioner.

    The PV controller binds claims to these volumes, so StatefulSet pods get
    scheduled; the hostPath is never mounted (KWOK runs no containers).
    """
    storage_class: dict[str, object] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "Immediate",
        "reclaimPolicy": "Retain",
    }
    volumes: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"kwok-pv-{i:03d}"},
            "spec": {
                "capacity": {"storage": "20Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": STORAGE_CLASS,
                "hostPath": {"path": f"/var/lib/kwok-volumes/{i:03d}"},
            },
        }
        for i in range(PV_COUNT)
    ]
    return [storage_class, *volumes]


def _create_nodes(cp: ControlPlane, count: int) -> None:
    items = [_node_manifest(i) for i in range(count)] + _storage_manifests()
    manifest = {"apiVersion": "v1", "kind": "List", "items": items}
    path = cp.run_dir / "nodes.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cp.kubectl("apply", "-f", str(path))


def ensure_control_plane(run_dir: Path, *, nodes: int = NODE_COUNT) -> ControlPlane:
    """Return the healthy control plane recorded in ``run_dir``, starting one if needed."""
    existing = ControlPlane.load(run_dir)
    if existing is not None:
        if existing.healthy():
            return existing
        existing.stop()
    return start_control_plane(run_dir, nodes=nodes)
