"""``make demo``: a local cluster with a real node, the operator from its chart, and a stack.

What it starts, all outliving this command: the control plane with three
KWOK nodes and one real node (:mod:`harness.node`), a PostgreSQL on the host
for the stack's PgBouncer (reached from pods through the node's veth), and,
on the real node, the operator installed from ``charts/retention-operator``
with the built helm, running in its own pod as the chart's ServiceAccount.
It builds the project's images (cached), loads them into the node, applies
``crds/samples/minimal.yaml`` into namespace ``demo`` (which enforces Pod
Security ``restricted``) with the local images and database (TLS, verified
against the demo's own CA), and waits until
the stack is Ready. Then it POSTs one job to the API's Service and waits for
its row in PostgreSQL. ``make demo-down`` stops everything it started; a
second ``make demo`` (after ``demo-down``, or after a crash) starts afresh.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import retention_contract as contract
from harness import controlplane, images, jobload, pki
from harness.node.realnode import RealNode
from harness.postgres_servers import PostgresServer, start_postgres
from harness.procs import NotReady, stop_group

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "crds" / "samples" / "minimal.yaml"
CHART = REPO / "charts" / "retention-operator"
NAMESPACE = "demo"
OPERATOR_NAMESPACE = "retention-system"
RELEASE = "retention-operator"
READY_TIMEOUT_S = 420
# The demo's stack runs these images of the project; the operator's comes from the chart.
STACK_IMAGES = ("workloads", "redis", "pgbouncer")


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def stack_manifest(
    *, refs: dict[str, str], host: str, port: int, user: str, dbname: str
) -> dict[str, Any]:
    """The minimal sample in namespace ``demo``, on the local images and PostgreSQL."""
    stack: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    stack["metadata"]["namespace"] = NAMESPACE
    spec = stack["spec"]
    spec["api"]["image"] = refs["workloads"]
    spec["redis"]["managed"]["image"] = refs["redis"]
    spec["pgbouncer"]["image"] = refs["pgbouncer"]
    spec["pgbouncer"]["database"].update({"host": host, "port": port, "user": user, "name": dbname})
    # Each job waits 200 ms (as a call to another service would) and a worker runs
    # four at once, so `make demo-load` gives a backlog the workers must scale
    # out for; at most four workers, which two cores carry.
    spec["workers"].update(
        {
            "maxReplicas": 4,
            "concurrency": 4,
            "env": [{"name": contract.ENV_JOB_IO_MS, "value": "200"}],
        }
    )
    # verify-full, the default once a CA is given: the name is the address in the certificate.
    spec["pgbouncer"]["tls"] = {
        "ca": {"configMapKeyRef": {"name": "demo-postgres-ca", "key": "ca.crt"}}
    }
    return stack


def _apply(cp: controlplane.ControlPlane, name: str, manifest: dict[str, Any]) -> None:
    path = cp.run_dir / f"demo-{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cp.kubectl("apply", "--server-side", "-f", str(path))


def install_operator(cp: controlplane.ControlPlane, *, image: str, log_dir: Path) -> None:
    """``helm upgrade --install`` the chart with the local operator image; wait for its pod.

    Raises RuntimeError with helm's output when the release does not become ready.
    """
    repository, tag = image.rsplit(":", 1)
    argv = [
        str(cp.bin_dir / "helm"), "upgrade", "--install", RELEASE, str(CHART),
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--kubeconfig", str(cp.kubeconfig),
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=IfNotPresent",
        "--set", "retrySeconds=3",
        "--set-json", 'nodeSelector={"retention.dev/node-kind":"real"}',
        "--wait", "--timeout", "180s",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    (log_dir / "helm-install.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"helm install failed:\n{done.stdout}{done.stderr}")


def _stack(cp: controlplane.ControlPlane) -> dict[str, Any]:
    out = cp.kubectl("get", "rstack", "demo", "-n", NAMESPACE, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def _ready_condition(stack: dict[str, Any]) -> dict[str, Any]:
    for condition in stack.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


def wait_ready(cp: controlplane.ControlPlane, *, timeout: float) -> bool:
    """Wait until the demo stack is Ready=True, saying each new reason it waits for."""
    deadline = time.monotonic() + timeout
    said = ""
    while time.monotonic() < deadline:
        ready = _ready_condition(_stack(cp))
        if ready.get("status") == "True":
            return True
        now = f"{ready.get('reason', 'no status yet')}: {ready.get('message', '')}".strip(": ")
        if now != said:
            _say(f"waiting for the stack ({now})")
            said = now
        time.sleep(2)
    return False


def service_url(cp: controlplane.ControlPlane, name: str) -> str:
    svc = json.loads(cp.kubectl("get", "service", name, "-n", NAMESPACE, "-o", "json"))
    port = svc["spec"]["ports"][0]["port"]
    return f"http://{svc['spec']['clusterIP']}:{port}"


def send_one_job(
    cp: controlplane.ControlPlane, postgres: PostgresServer, *, timeout: float = 60
) -> str:
    """POST one job to the API's Service and wait for its row; return the job id.

    The host reaches Service addresses through the real node's veth (kube-proxy
    there routes them). Raises RuntimeError if the row does not appear in time.
    """
    task = f"demo-{uuid.uuid4().hex[:8]}"
    (job_id,) = asyncio.run(jobload.post_jobs(service_url(cp, "demo-api"), 1, task=task)).ids
    if jobload.wait_rows(postgres, task, 1, timeout=timeout)[0] == 1:
        return job_id
    raise RuntimeError(f"job {job_id} was accepted but no row appeared within {timeout:.0f}s")


@dataclass
class Demo:
    """A running demo: its cluster, its PostgreSQL, the images it runs, the job it sent."""

    cp: controlplane.ControlPlane
    postgres: PostgresServer
    refs: dict[str, str]
    job_id: str
    seconds: float


def start(run_dir: Path) -> Demo:
    """Start the demo (a running or crashed one is stopped first) and return it once Ready.

    Raises RuntimeError (or NotReady, with a server's log tail) when a part
    does not come up; what did start stays up for ``down`` to stop.
    """
    down(run_dir, quiet=True)
    began = time.monotonic()
    cp = controlplane.ensure_control_plane(run_dir / "cluster", real_node=True)
    assert cp.node is not None
    net = cp.node.net
    _say(f"control plane at {cp.server}, real node {net.node_ip} in network namespace {net.netns}")
    built = images.build(["operator", *STACK_IMAGES])
    images.import_into(list(built.values()), address=cp.node.containerd_address)
    refs = {name: image.ref for name, image in built.items()}
    _say("images loaded into the node: " + ", ".join(refs.values()))
    # Like a hosted PostgreSQL: TLS with a certificate for the address the
    # pods use, signed by a CA the stack is given (so PgBouncer verifies it).
    tls = pki.create_server_tls(run_dir / "postgres-tls", hosts=[net.host_ip], ca_name="demo-ca")
    postgres = start_postgres(
        base_dir=run_dir / "postgres", listen=(net.host_ip,), clients=(net.cluster_cidr,), tls=tls
    )
    state = {"pids": {"postgres": postgres.pid}, "postgres_root": str(postgres.root)}
    (run_dir / "demo.json").write_text(json.dumps(state))
    _say(f"PostgreSQL on {net.host_ip}:{postgres.port}")
    for namespace in (OPERATOR_NAMESPACE, NAMESPACE):
        _apply(cp, f"namespace-{namespace}", restricted_namespace(namespace))
    install_operator(cp, image=refs["operator"], log_dir=run_dir)
    _say(f"operator installed from the chart in namespace {OPERATOR_NAMESPACE}")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "demo-postgres", "namespace": NAMESPACE},
        "stringData": {"password": postgres.password},
    }
    _apply(cp, "secret", secret)
    ca = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "demo-postgres-ca", "namespace": NAMESPACE},
        "data": {"ca.crt": tls.ca_cert.read_text()},
    }
    _apply(cp, "postgres-ca", ca)
    stack = stack_manifest(
        refs=refs, host=net.host_ip, port=postgres.port, user=postgres.user, dbname=postgres.dbname
    )
    _apply(cp, "stack", stack)
    if not wait_ready(cp, timeout=READY_TIMEOUT_S):
        raise RuntimeError(
            f"the stack was not Ready within {READY_TIMEOUT_S} s; see `kubectl describe rstack`"
        )
    job_id = send_one_job(cp, postgres)
    _say(f"job {job_id} went through the API, Redis and a worker into PostgreSQL")
    return Demo(
        cp=cp, postgres=postgres, refs=refs, job_id=job_id, seconds=time.monotonic() - began
    )


def restricted_namespace(name: str) -> dict[str, Any]:
    """A namespace that enforces Pod Security ``restricted``."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }


def up(run_dir: Path) -> int:
    """``make demo``: start it, show the stack and say what to try next; KUBECONFIG= last."""
    try:
        demo = start(run_dir)
    except (RuntimeError, NotReady) as exc:
        _say(f"failed: {exc}")
        return 1
    cp = demo.cp
    print(cp.kubectl("get", "rstack", "-A"), file=sys.stderr)
    print(cp.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide"), file=sys.stderr)
    api = service_url(cp, "demo-api")
    _say(
        f"Ready in {demo.seconds:.0f} s. Next:\n"
        f"  export KUBECONFIG={cp.kubeconfig} PATH={cp.bin_dir}:$PATH\n"
        "  kubectl get rstack -A; kubectl describe rstack demo -n demo\n"
        f"  kubectl logs -n {OPERATOR_NAMESPACE} deploy/{RELEASE}     # JSON, one line each\n"
        f"  curl -s {api}/readyz; curl -s -XPOST {api}/v1/jobs -H 'content-type: "
        'application/json\' -d \'{"task":"hello","payload":{}}\'\n'
        "  make demo-load JOBS=2000   # a backlog; watch the workers scale out, then in\n"
        "  make demo-down\n"
        "The API's latency autoscaling reads Prometheus, which the demo does not run: the\n"
        "stack says so in a MetricsUnavailable Warning and holds the API's replicas."
    )
    print(f"KUBECONFIG={cp.kubeconfig}")
    return 0


def down(run_dir: Path, *, quiet: bool = False) -> int:
    """Stop PostgreSQL and the cluster (real node included). Returns 0 when nothing ran, too."""
    state_path = run_dir / "demo.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        for name, pid in state.get("pids", {}).items():
            if pid:
                stop_group(int(pid), timeout=15)
                _say(f"stopped {name}")
        state_path.unlink()
        # The data directory may belong to the postgres user; root removes it all the same.
        shutil.rmtree(state.get("postgres_root", ""), ignore_errors=True)
    cp = controlplane.ControlPlane.load(run_dir / "cluster")
    if cp is not None:
        left = cp.stop()
        _say("cluster stopped" + (f"; could not remove: {left}" if left else ""))
        return 0
    # A crash before the cluster recorded itself can still leave a node behind.
    node = RealNode.load(run_dir / "cluster" / "node")
    if node is not None:
        left = node.stop()
        _say("real node stopped" + (f"; could not remove: {left}" if left else ""))
    elif not quiet:
        _say("nothing was running")
    return 0


def load(run_dir: Path, *, jobs: int, watch_seconds: float = 240) -> int:
    """``make demo-load``: POST ``jobs`` jobs to the demo's API, then watch the workers.

    Prints, every 5 s, the backlog the autoscaler read, the workers' replicas
    and its last reason, until the backlog is gone and the workers are back
    where they started (or ``watch_seconds`` pass). Returns 1 if no demo runs.
    """
    cp = controlplane.ControlPlane.load(run_dir / "cluster")
    if cp is None or not cp.healthy():
        _say("no demo is running: `make demo` first")
        return 1
    task = f"load-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    start = _workers(cp)[0]
    posted = asyncio.run(jobload.post_jobs(service_url(cp, "demo-api"), jobs, task=task))
    _say(f"{len(posted.ids)} jobs accepted in {time.monotonic() - began:.1f} s")
    settled = 0
    while time.monotonic() - began < watch_seconds and settled < 3:
        wanted, ready, backlog, reason = _workers(cp)
        _say(
            f"t={time.monotonic() - began:4.0f} s  backlog {backlog:>5}  "
            f"workers {wanted} wanted, {ready} ready  {reason[:90]}"
        )
        settled = settled + 1 if backlog in (0, "0") and wanted == start else 0
        time.sleep(5)
    return 0


def _workers(cp: controlplane.ControlPlane) -> tuple[str, str, str, str]:
    """The workers' wanted and ready replicas, the backlog and the last reason (or '?')."""
    workers = _stack(cp).get("status", {}).get("autoscaling", {}).get("workers", {})
    out = cp.kubectl(
        "get", "deployment", "demo-workers", "-n", NAMESPACE,
        "-o", "jsonpath={.spec.replicas} {.status.readyReplicas}", check=False,
    ).split()  # fmt: skip
    wanted, ready = [*out, "?", "?"][:2]
    return wanted, ready, str(workers.get("backlog", "?")), str(workers.get("lastReason", ""))
