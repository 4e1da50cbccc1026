"""A real Kubernetes control plane as local processes, with KWOK nodes and a real one.

etcd, kube-apiserver (RBAC on, client-certificate admin in system:masters,
service-account signing keys), kube-controller-manager, kube-scheduler and
kwok run as subprocesses with free ports. KWOK plays the kubelet of its
nodes: scheduled pods become Running without containers, which is what the
scale tests need. This is the same shape as controller-runtime's envtest plus
the controller manager, scheduler and fake nodes.

With ``real_node=True`` the cluster also gets one real node
(:mod:`harness.node`): containerd, the kubelet and kube-proxy in a network
namespace of the harness's own, with CoreDNS and local-path-provisioner on
it. Then the API server listens on the host's end of the node's veth (pods
reach it there, through the ``kubernetes`` Service), the Endpoints
controllers run, and the KWOK nodes carry a ``NoSchedule`` taint so that only
pods that ask for them land there. Without it, everything stays on
127.0.0.1 as before.

Callers: the pytest fixtures (``fixtures_cluster``) and the CLI (``make
cluster-up`` / ``make demo``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
import yaml

from harness import audit as audit_mod
from harness import pki as pki_mod
from harness.node import addons, cgroups, network
from harness.node.realnode import LABEL_NODE_KIND, RealNode, start_real_node
from harness.procs import Proc, free_port, start, stop_group, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "e2e" / "controlplane" / "build.sh"
# A /16 holds 65,534 Services, so benchmarks of a thousand stacks (two Services
# each) measure the operator, not the range; the first address (10.0.0.1, the
# kubernetes Service) stays the one the serving certificate names.
SERVICE_CIDR = "10.0.0.0/16"
# Pod and node IPs live in the loopback range, so anything that connects to a
# KWOK pod (the Redis Cluster bootstrap, say) reaches this machine only and is
# refused at once, instead of sending packets to a private network.
POD_CIDR = "127.64.0.1/16"
NODE_IP = "127.0.0.1"
NODE_COUNT = 3


# KWOK manages the nodes with this annotation, and no other.
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
# The taint the KWOK nodes carry in a cluster with a real node.
KWOK_TAINT = {"key": LABEL_NODE_KIND, "value": "kwok", "effect": "NoSchedule"}


def build_binaries(group: str = "controlplane") -> Path:
    """Build (or find cached) binaries of ``group`` and return their directory.

    ``group`` is ``controlplane`` or ``node`` (kubelet, kube-proxy, CoreDNS,
    local-path-provisioner). Runs ``e2e/controlplane/build.sh``, whose progress
    goes to stderr and whose last line is ``BIN_DIR=<path>``. Raises
    CalledProcessError if the build fails.
    """
    env_dir = os.environ.get("RETENTION_BIN_DIR")
    if env_dir and group == "controlplane":
        return Path(env_dir)
    return run_build_script(BUILD_SCRIPT, group)


def run_build_script(script: Path, *args: str) -> Path:
    """Run one of ``e2e/controlplane``'s build scripts; return the folder its last line names.

    Progress goes to stderr; the last line of stdout is ``BIN_DIR=<path>``.
    Raises CalledProcessError if the build fails.
    """
    out = subprocess.run(
        ["bash", str(script), *args], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if not last.startswith("BIN_DIR="):
        raise RuntimeError(f"{script.name} printed no BIN_DIR line: {out!r}")
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
    node: RealNode | None = None
    # Set once start_control_plane finished; a state file without it is a crashed start.
    complete: bool = False

    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def node_root(self) -> Path:
        return self.run_dir / "node"

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

    def record(self, proc: Proc) -> None:
        """Remember a process just started, on disk at once: a crash after it leaves no orphan."""
        self.procs.append(proc)
        self.pids[proc.name] = proc.pid
        self.save()

    def save(self) -> None:
        """Write the state file that ``load`` and ``stop`` read (for the CLI)."""
        data = {
            "run_dir": str(self.run_dir),
            "bin_dir": str(self.bin_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": self.server,
            "pids": self.pids,
            "real_node": self.node is not None,
            "complete": self.complete,
        }
        self.state_path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, run_dir: Path) -> ControlPlane | None:
        """Return the control plane recorded in ``run_dir``, or None if there is none."""
        path = run_dir / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        run_dir = Path(data["run_dir"])
        return cls(
            run_dir=run_dir,
            bin_dir=Path(data["bin_dir"]),
            kubeconfig=Path(data["kubeconfig"]),
            server=data["server"],
            pids={k: int(v) for k, v in data["pids"].items()},
            node=RealNode.load(run_dir / "node"),
            complete=bool(data.get("complete")),
        )

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (written only by a start with ``audit=True``)."""
        return self.run_dir / "audit.log"

    def restart(self, name: str, *, down_seconds: float = 0.0, kill: bool = False) -> None:
        """Stop one process of the control plane (``etcd``, ``kube-apiserver``, ...) and
        start it again with the same command line, ports and data; return once it is ready.

        SIGTERM (its graceful stop, at most 3 s), or SIGKILL with ``kill``; then
        ``down_seconds`` with nothing listening. The other processes are not told:
        they see a server go away and come back, as in an upgrade or a crash.
        Raises NotReady with the log tail if it does not come back.
        """
        pid = self.pids[name]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        stop_group(pid, timeout=3)
        for old in [p for p in self.procs if p.name == name]:
            old.stop(timeout=1)
            self.procs.remove(old)
        time.sleep(down_seconds)
        proc = start(name, [a.decode() for a in argv], log_dir=self.run_dir / "logs")
        self.record(proc)
        wait_until(
            lambda: self._serves(name, proc),
            what=f"{name} after a restart",
            timeout=90,
            proc=proc,
        )

    def _serves(self, name: str, proc: Proc) -> bool:
        """Whether ``proc`` answers its health check: etcd's /health, the API server's
        /readyz, true for the others (they have no port of their own to ask)."""
        if name == "etcd":
            argv = cast(list[str], proc.popen.args)  # start() is given a list.
            flag = next(a for a in argv if a.startswith("--listen-client-urls="))
            url = flag.split("=", 1)[1]
            return bool(httpx.get(f"{url}/health", timeout=2).json().get("health") == "true")
        if name == "kube-apiserver":
            return _api_get(self.run_dir / "pki", self.server, "/readyz").status_code == 200
        return proc.alive()

    def healthy(self) -> bool:
        """Return True if the start finished, every recorded process lives and /readyz is ok."""
        if not self.complete:
            return False
        node_pids = [*self.node.pids.values(), self.node.init_pid] if self.node else []
        for pid in [*self.pids.values(), *node_pids]:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
        try:
            return _api_get(self.run_dir / "pki", self.server, "/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> list[str]:
        """Stop the real node, then every process group of the control plane, and forget it.

        Returns what the node could not remove (empty when all went).
        """
        left: list[str] = []
        node = self.node or RealNode.load(self.node_root)
        if node is not None:
            left = node.stop()
            self.node = None
        # The API server's graceful termination waits for its endpoint
        # reconciler and open watches; its data is thrown away, so it gets less.
        timeouts = {"etcd": 5, "kube-apiserver": 3}
        for name, pid in reversed(list(self.pids.items())):
            stop_group(pid, timeout=timeouts.get(name, 10))
        for proc in self.procs:
            proc.stop(timeout=1)
        self.state_path.unlink(missing_ok=True)
        return left


def _client(pki_dir: Path) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    ctx.load_cert_chain(str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
    return httpx.Client(verify=ctx, timeout=5)


def _api_get(pki_dir: Path, server: str, path: str) -> httpx.Response:
    with _client(pki_dir) as client:
        return client.get(server + path)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    pki: pki_mod.Pki,
    cert: Path | None = None,
    key: Path | None = None,
) -> None:
    """Write a self-contained kubeconfig (certificates embedded): the admin's, or with
    ``cert`` and ``key`` the user that client certificate names."""
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
                    "client-certificate-data": _b64(cert or pki.admin_cert),
                    "client-key-data": _b64(key or pki.admin_key),
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
    bin_dir: Path,
    run_dir: Path,
    pki: pki_mod.Pki,
    etcd_url: str,
    *,
    net: network.NodeNetwork | None,
    audit: bool = False,
) -> tuple[Proc, str]:
    port = free_port()
    # With a real node the API server listens on the host's end of its veth:
    # a local address of this machine, which pods reach and 127.0.0.1 is not.
    address = net.host_ip if net is not None else "127.0.0.1"
    server = f"https://{address}:{port}"
    kubelet_client = pki_mod.issue(
        pki, "apiserver-kubelet-client", common_name="kube-apiserver", organization="system:masters"
    )
    argv = [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={address}",
        # Mandatory on a machine without a default route.
        f"--advertise-address={address}",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={net.service_cidr if net else SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--profiling=false",
        # logs, exec and port-forward: the API server calls the kubelet as a master.
        f"--kubelet-client-certificate={kubelet_client.cert}",
        f"--kubelet-client-key={kubelet_client.key}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--cert-dir={run_dir / 'pki'}",
        "--v=1",
    ]
    if net is not None:
        # The real node's serving certificate is signed by the local CA.
        argv.append(f"--kubelet-certificate-authority={pki.ca_cert}")
        argv += _aggregation_flags(pki_mod.create_front_proxy(run_dir / "pki"))
    else:
        # A loopback address is not valid in Endpoints.
        argv.append("--endpoint-reconciler-type=none")
    if audit:
        argv += [
            f"--audit-policy-file={audit_mod.write_policy(run_dir / 'audit-policy.yaml')}",
            f"--audit-log-path={run_dir / 'audit.log'}",
        ]
    proc = start("kube-apiserver", argv, log_dir=run_dir / "logs")
    wait_until(
        lambda: _api_get(run_dir / "pki", server, "/readyz").status_code == 200,
        what="kube-apiserver /readyz",
        timeout=90,
        proc=proc,
    )
    return proc, server


def _aggregation_flags(proxy: pki_mod.FrontProxy) -> list[str]:
    """The aggregation layer (APIServices such as metrics.k8s.io and external.metrics.k8s.io).

    The API server proxies to an extension API server with the front-proxy client
    certificate and says who the user is in the headers named here, which the
    extension trusts only from that certificate. It dials the endpoint of the
    APIService's Service itself: no kube-proxy runs on the API server's host (the
    node's runs in the node's namespace), and a backend on the host itself, as
    the benchmark's metrics servers are, has no pod to route a ClusterIP to.
    """
    return [
        f"--requestheader-client-ca-file={proxy.ca_cert}",
        f"--requestheader-allowed-names={pki_mod.FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={proxy.cert}",
        f"--proxy-client-key-file={proxy.key}",
        "--enable-aggregator-routing=true",
    ]


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


def _node_manifest(index: int, *, tainted: bool) -> dict[str, object]:
    name = f"kwok-node-{index}"
    node: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", KWOK_ANNOTATION: "fake"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                LABEL_NODE_KIND: "kwok",
                "topology.kubernetes.io/zone": f"zone-{index % 3}",
            },
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
        },
    }
    if tainted:
        node["spec"] = {"taints": [KWOK_TAINT]}
    return node


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
    run_dir: Path,
    *,
    nodes: int = NODE_COUNT,
    bin_dir: Path | None = None,
    real_node: bool = False,
    audit: bool = False,
) -> ControlPlane:
    """Start etcd, the API server, controller manager, scheduler and KWOK with ``nodes`` nodes.

    With ``real_node`` also one real node (and its CoreDNS and volume
    provisioner), which needs root. With ``audit`` the API server logs every
    write to ``ControlPlane.audit_log`` (:mod:`harness.audit`). Returns once the
    API server is ready, the default ServiceAccount exists and every node is
    Ready. On failure, stops whatever it started and re-raises (the NotReady
    message carries the failing server's log tail).
    """
    bin_dir = bin_dir or build_binaries()
    node_bin_dir = build_binaries("node") if real_node else None
    run_dir.mkdir(parents=True, exist_ok=True)
    # Whatever an earlier run left here (after a crash, say) goes first.
    leftover = RealNode.load(run_dir / "node")
    if leftover is not None:
        leftover.stop()
    # A new control plane starts empty: objects of an earlier run stay out.
    shutil.rmtree(run_dir / "etcd-data", ignore_errors=True)
    began = time.monotonic()
    kubeconfig = run_dir / "kubeconfig"
    cp = ControlPlane(run_dir=run_dir, bin_dir=bin_dir, kubeconfig=kubeconfig, server="")
    net: network.NodeNetwork | None = None
    try:
        if real_node:
            net = network.allocate()
            # Recorded at once, so that a crash from here on is cleaned up by the next start.
            cp.node = RealNode(net=net, root=cp.node_root, cgroup_root=cgroups.name_for(net.slot))
            cp.node_root.mkdir(parents=True, exist_ok=True)
            cp.node.save()
            network.wire(net)
        server_ips = (net.host_ip, net.kubernetes_service_ip) if net else ("10.0.0.1",)
        pki = pki_mod.create(run_dir / "pki", server_ips=server_ips)
        etcd, etcd_url = _start_etcd(bin_dir, run_dir)
        cp.record(etcd)
        api, cp.server = _start_apiserver(bin_dir, run_dir, pki, etcd_url, net=net, audit=audit)
        cp.record(api)
        write_kubeconfig(kubeconfig, server=cp.server, pki=pki)
        common = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--leader-elect=false",
            # Upstream's scalability jobs raise both from their defaults (20/30 for
            # the controller manager's clients, 50/100 for the scheduler's): at the
            # defaults the controllers' own client-side rate limits set the pace of
            # hundreds of stacks (bench/operator/README.md), and a benchmark would
            # measure those.
            "--kube-api-qps=100",
            "--kube-api-burst=100",
        ]
        # Endpoints cannot hold the loopback pod IPs KWOK hands out: without a
        # real node nothing routes Service traffic, so those controllers stay off.
        controllers = (
            "*"
            if net
            else (
                "*,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller"
            )
        )
        cp.record(
            _start_component(
                "kube-controller-manager",
                [
                    str(bin_dir / "kube-controller-manager"),
                    *common,
                    f"--controllers={controllers}",
                    "--use-service-account-credentials=true",
                    f"--service-account-private-key-file={pki.sa_key}",
                    f"--root-ca-file={pki.ca_cert}",
                    f"--service-cluster-ip-range={net.service_cidr if net else SERVICE_CIDR}",
                    # Quick reaction keeps e2e tests short.
                    "--concurrent-deployment-syncs=10",
                    "--concurrent-replicaset-syncs=10",
                ],
                run_dir,
            )
        )
        cp.record(
            _start_component("kube-scheduler", [str(bin_dir / "kube-scheduler"), *common], run_dir)
        )
        kwok = start(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={kubeconfig}",
                # Only its own nodes: the real node has a kubelet of its own.
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                "--node-lease-duration-seconds=40",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
                f"--server-address=127.0.0.1:{free_port()}",
                # With no Stage configured, kwok applies its built-in fast node
                # and pod stages: nodes go Ready, scheduled pods go Running.
            ],
            log_dir=run_dir / "logs",
        )
        cp.record(kwok)
        _create_nodes(cp, nodes, real_node=real_node)
        if net is not None and node_bin_dir is not None:
            node_images = addons.node_images()
            cp.node = start_real_node(
                root=cp.node_root,
                net=net,
                cp_pki=pki,
                server=cp.server,
                bin_dir=node_bin_dir,
                sandbox_image=node_images.sandbox,
                preload=node_images.built,
                log_dir=run_dir / "logs",
            )
            cp.save()
        wanted = nodes + (1 if real_node else 0)
        wait_until(lambda: _nodes_ready(cp, wanted), what="nodes Ready", timeout=90, proc=kwok)
        wait_until(lambda: _default_sa_exists(cp), what="default ServiceAccount", timeout=60)
        if net is not None and cp.node is not None:
            addons.install(cp, net=net, images=node_images, volumes=cp.node.layout.volumes)
        cp.complete = True
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


def _create_nodes(cp: ControlPlane, count: int, *, real_node: bool) -> None:
    items = [_node_manifest(i, tainted=real_node) for i in range(count)]
    # With a real node, local-path-provisioner makes real volumes instead.
    if not real_node:
        items += _storage_manifests()
    manifest = {"apiVersion": "v1", "kind": "List", "items": items}
    path = cp.run_dir / "nodes.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cp.kubectl("apply", "-f", str(path))


def ensure_control_plane(
    run_dir: Path, *, nodes: int = NODE_COUNT, real_node: bool = False
) -> ControlPlane:
    """Return the healthy control plane recorded in ``run_dir``, starting one if needed.

    One recorded without the real node asked for (or with one not asked for) is replaced.
    """
    existing = ControlPlane.load(run_dir)
    if existing is not None:
        if existing.healthy() and (existing.node is not None) == real_node:
            return existing
        existing.stop()
    return start_control_plane(run_dir, nodes=nodes, real_node=real_node)
