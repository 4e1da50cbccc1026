"""The closed loop's cluster and each arm's fresh stack, on the real node.

Once per run (:func:`cluster`): a control plane with its real node, the
project's images loaded into it, the operator installed from its chart, a
Prometheus on the host that scrapes the pods every 15 s (found through the API
server by their ``prometheus.io`` annotations, :class:`Discovery`),
metrics-server (for the HPA's CPU) and KEDA when an arm needs them. Per arm
(:func:`fresh_stack`): a namespace of its own (Pod Security ``restricted``), a
fresh Redis and PostgreSQL on the host's veth address (the stack's external
Redis and database; PgBouncer runs in a pod in front of it), and the stack of
:func:`bench.closedloop.arms.stack`, Ready. Everything is stopped by
:meth:`Cluster.stop` and :meth:`Stack.stop`.
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

import retention_contract as contract
from bench.closedloop import arms
from harness import autoscalers, controlplane, demo, images, pki
from harness.postgres_servers import PostgresServer, start_postgres
from harness.prometheus_server import PrometheusServer
from harness.redis_servers import RedisServer
from harness.service_base import free_ports

SCRAPE_INTERVAL = "15s"
STACK_IMAGES = ("operator", "workloads", "pgbouncer")
READY_TIMEOUT_S = 420
DATABASE_SECRET = "cl-postgres"


def say(message: str) -> None:
    print(f"closedloop: {message}", file=sys.stderr, flush=True)


@dataclass
class Cluster:
    """What every arm shares: the cluster, the operator, Prometheus and the autoscalers."""

    cp: controlplane.ControlPlane
    refs: dict[str, str]
    prometheus: PrometheusServer
    discovery: Discovery
    keda_version: str | None = None
    kubernetes_version: str = ""
    owns_cluster: bool = True
    """False for a cluster someone else started (:func:`attach`): ``stop`` leaves it up."""

    @property
    def host_ip(self) -> str:
        assert self.cp.node is not None
        return self.cp.node.net.host_ip

    def stop(self) -> None:
        self.discovery.stop()
        self.prometheus.stop()
        if self.owns_cluster:
            left = self.cp.stop()
            say("cluster stopped" + (f"; could not remove: {left}" if left else ""))


def _prometheus_config(targets: Path) -> dict[str, Any]:
    """Scrape the pods :class:`Discovery` lists in ``targets`` (file_sd, re-read on change)."""
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [{"job_name": "pods", "file_sd_configs": [{"files": [str(targets)]}]}],
    }


class Discovery:
    """Writes every second the pods Prometheus scrapes into a file_sd targets file.

    Debian's Prometheus is built without Kubernetes service discovery, so this does
    what ``kubernetes_sd_configs`` with the usual relabelling would: every Running pod
    with an IP whose ``prometheus.io/scrape`` annotation is ``true``, at the port and
    path of its ``prometheus.io/port`` and ``prometheus.io/path`` annotations, with
    label ``pod``. Prometheus notices the rewritten file at once (inotify).
    """

    def __init__(self, cp: controlplane.ControlPlane, path: Path) -> None:
        self._kube = Kube(cp)
        self._path = path
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._run, name="file-sd", daemon=True)
        self._thread.start()

    def _targets(self) -> list[dict[str, Any]]:
        out = []
        for pod in self._kube.get("/api/v1/pods").get("items", []):
            meta, status = pod["metadata"], pod.get("status", {})
            notes = meta.get("annotations") or {}
            if notes.get("prometheus.io/scrape") != "true" or status.get("phase") != "Running":
                continue
            if not status.get("podIP") or "prometheus.io/port" not in notes:
                continue
            labels = {
                "pod": meta["name"],
                "__metrics_path__": notes.get("prometheus.io/path", "/metrics"),
            }
            out.append(
                {"targets": [f"{status['podIP']}:{notes['prometheus.io/port']}"], "labels": labels}
            )
        return sorted(out, key=lambda t: str(t["targets"]))

    def _write(self) -> None:
        text = json.dumps(self._targets())
        if self._path.exists() and self._path.read_text() == text:
            return
        partial = self._path.with_suffix(".partial")
        partial.write_text(text)
        partial.rename(self._path)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self._write()
            except (httpx.HTTPError, OSError) as error:
                say(f"pod discovery failed once: {error}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._kube.close()


def cluster(run_dir: Path, *, keda: bool, hpa: bool) -> Cluster:
    """Start what every arm shares (see the module's docstring); stop it with ``stop()``."""
    began = time.monotonic()
    metrics_dir = autoscalers.build("metrics-server") if hpa else None
    keda_dir = autoscalers.build("keda") if keda else None
    built = images.build(list(STACK_IMAGES))
    cp = controlplane.start_control_plane(run_dir / "cluster", real_node=True)
    shared: Cluster | None = None
    try:
        assert cp.node is not None
        images.import_into(list(built.values()), address=cp.node.containerd_address)
        refs = {name: image.ref for name, image in built.items()}
        namespace = demo.OPERATOR_NAMESPACE
        _apply(cp, f"namespace-{namespace}", demo.restricted_namespace(namespace))
        demo.install_operator(cp, image=refs["operator"], log_dir=run_dir)
        out = attach(cp, refs, run_dir)
        shared = out
        out.owns_cluster = True
        if metrics_dir is not None:
            autoscalers.start_metrics_server(cp, metrics_dir)
        if keda_dir is not None:
            out.keda_version = autoscalers.start_keda(cp, keda_dir).version
        seconds = time.monotonic() - began
        say(f"cluster ready in {seconds:.0f} s (Kubernetes {out.kubernetes_version})")
        return out
    except BaseException:
        if shared is not None:
            shared.owns_cluster = False
            shared.stop()
        cp.stop()
        raise


def attach(cp: controlplane.ControlPlane, refs: dict[str, str], run_dir: Path) -> Cluster:
    """A :class:`Cluster` of a running cluster whose operator is installed (the demo's):
    starts only the Prometheus; ``stop()`` stops only that."""
    assert cp.node is not None
    (port,) = free_ports(1)
    root = run_dir / "prometheus"
    root.mkdir(parents=True, exist_ok=True)
    discovery = Discovery(cp, root / "pods.json")
    prometheus = PrometheusServer(
        port=port,
        root=root,
        log_dir=run_dir / "logs",
        host=cp.node.net.host_ip,
        config=_prometheus_config(root / "pods.json"),
    )
    try:
        prometheus.start()
    except BaseException:
        discovery.stop()
        raise
    out = Cluster(cp=cp, refs=refs, prometheus=prometheus, discovery=discovery, owns_cluster=False)
    version = json.loads(cp.kubectl("version", "-o", "json"))
    out.kubernetes_version = version.get("serverVersion", {}).get("gitVersion", "")
    return out


def _apply(cp: controlplane.ControlPlane, name: str, *docs: dict[str, Any]) -> None:
    path = cp.run_dir / f"closedloop-{name}.yaml"
    path.write_text(yaml.safe_dump_all(list(docs)))
    cp.kubectl("apply", "--server-side", "-f", str(path))


@dataclass
class Stack:
    """One arm's stack: its namespace, Redis and PostgreSQL."""

    arm: str
    namespace: str
    redis: RedisServer
    postgres: PostgresServer
    api_url: str = ""
    stopped: bool = field(default=False, repr=False)

    @property
    def stream(self) -> str:
        return contract.default_stream(self.namespace, arms.STACK)

    def stop(self, cluster: Cluster) -> None:
        """Delete the arm's namespace (its pods stop) and stop its Redis and PostgreSQL."""
        if self.stopped:
            return
        self.stopped = True
        cluster.cp.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)
        self.redis.stop()
        self.postgres.stop()


def fresh_stack(cluster: Cluster, plant: arms.Plant, *, arm: str, run_dir: Path) -> Stack:
    """The arm's stack, Ready, with its Redis and PostgreSQL (see the module's docstring)."""
    cp, host = cluster.cp, cluster.host_ip
    assert cp.node is not None
    namespace = f"cl-{arm}"
    (port,) = free_ports(1)
    # A password, as Redis wants for any address but loopback (protected mode).
    redis = RedisServer(
        name=f"redis-{arm}",
        port=port,
        dir=run_dir / f"redis-{arm}",
        log_dir=run_dir,
        host=host,
        password=secrets.token_hex(16),
    )
    redis.start()
    # Like a hosted PostgreSQL (and the demo's): TLS with a certificate for the host's
    # address, signed by a CA the stack is given, so PgBouncer verifies it.
    tls = pki.create_server_tls(run_dir / f"postgres-tls-{arm}", hosts=[host], ca_name=f"cl-{arm}")
    try:
        postgres = start_postgres(
            base_dir=run_dir / f"postgres-{arm}",
            listen=(host,),
            clients=(cp.node.net.cluster_cidr,),
            tls=tls,
        )
    except BaseException:
        redis.stop()
        raise
    stack = Stack(arm=arm, namespace=namespace, redis=redis, postgres=postgres)
    try:
        _apply(cp, f"namespace-{arm}", demo.restricted_namespace(namespace))
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": DATABASE_SECRET, "namespace": namespace},
            "stringData": {"password": postgres.password},
        }
        redis_secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": arms.REDIS_SECRET, "namespace": namespace},
            "stringData": {"password": redis.password},
        }
        ca = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": arms.DATABASE_CA, "namespace": namespace},
            "data": {"ca.crt": tls.ca_cert.read_text()},
        }
        _apply(cp, f"secret-{arm}", secret, redis_secret, ca)
        manifest = arms.stack(
            plant,
            arm=arm,
            namespace=namespace,
            image=cluster.refs["workloads"],
            pgbouncer_image=cluster.refs["pgbouncer"],
            redis_url=f"redis://{host}:{redis.port}/0",
            database={
                "host": host,
                "port": postgres.port,
                "user": postgres.user,
                "name": postgres.dbname,
            },
            database_secret=DATABASE_SECRET,
            prometheus_url=cluster.prometheus.url,
        )
        _apply(cp, f"stack-{arm}", manifest)
        _wait_ready(cp, namespace)
        svc = json.loads(
            cp.kubectl("get", "service", f"{arms.STACK}-api", "-n", namespace, "-o", "json")
        )
        stack.api_url = f"http://{svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"
        return stack
    except BaseException:
        stack.stop(cluster)
        raise


def _wait_ready(cp: controlplane.ControlPlane, namespace: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        out = cp.kubectl("get", "rstack", arms.STACK, "-n", namespace, "-o", "json", check=False)
        conditions = json.loads(out).get("status", {}).get("conditions", []) if out else []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return
        time.sleep(2)
    raise RuntimeError(
        f"stack {namespace}/{arms.STACK} was not Ready within {READY_TIMEOUT_S} s; "
        f"see `kubectl describe rstack -n {namespace}`"
    )


class Kube:
    """A small client of the API server for the 1 s samples (kubectl per sample costs a
    process start; this keeps one connection)."""

    def __init__(self, cp: controlplane.ControlPlane) -> None:
        material = pki.load(cp.run_dir / "pki")
        context = ssl.create_default_context(cafile=str(material.ca_cert))
        context.load_cert_chain(str(material.admin_cert), str(material.admin_key))
        self._client = httpx.Client(base_url=cp.server, verify=context, timeout=5)

    def get(self, path: str) -> dict[str, Any]:
        reply = self._client.get(path)
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body

    def close(self) -> None:
        self._client.close()
