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
its row in PostgreSQL. ``make demo EXAMPLE=bullmq`` runs the Hono + BullMQ
example (``examples/bullmq``, its image built on the project's base) instead
of the project's own API and workers: its stack, the same Redis, PgBouncer
and database, one message through its API until BullMQ lists it completed.
``make demo-down`` stops everything it started; a second ``make demo``
(after ``demo-down``, or after a crash) starts afresh.
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
from retention_operator import names
from retention_operator.builders import naming, redis

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "retention-operator"
NAMESPACE = "demo"
OPERATOR_NAMESPACE = "retention-system"
RELEASE = "retention-operator"
READY_TIMEOUT_S = 420
# Every demo stack runs these images of the project; the operator's comes from the chart.
STACK_IMAGES = ("redis", "redis-exporter", "pgbouncer", "pgbouncer-exporter")
# Each job waits 200 ms (as a call to another service would) and a worker runs
# four at once, so `make demo-load` gives a backlog the workers must scale out
# for; at most four workers, which two cores carry.
JOB_MS, WORKER_CONCURRENCY, MAX_WORKERS = 200, 4, 4


@dataclass(frozen=True)
class Workload:
    """What runs as a demo stack's API and workers: the project's own or an example.

    ``manifest``: the RetentionStack applied (its name is the stack's);
    ``image``: the image of both (a name :func:`harness.images.build` knows);
    ``jobs_path``: where its API takes a job (POST, a JSON object);
    ``job_ms_env``: the variable that sets how long one job waits.
    """

    manifest: Path
    image: str
    jobs_path: str
    job_ms_env: str


#: ``make demo EXAMPLE=<key>``; "" is the project's own API and workers.
WORKLOADS = {
    "": Workload(
        manifest=REPO / "crds" / "samples" / "minimal.yaml",
        image="workloads",
        jobs_path=jobload.JOBS_PATH,
        job_ms_env=contract.ENV_JOB_IO_MS,
    ),
    "bullmq": Workload(
        manifest=REPO / "examples" / "bullmq" / "stack.yaml",
        image="example-bullmq",
        jobs_path="/v1/messages",
        job_ms_env="EXAMPLE_JOB_MS",
    ),
}


def workload(example: str) -> Workload:
    """The workload of ``make demo EXAMPLE=<example>``; ValueError naming the known ones."""
    if example not in WORKLOADS:
        known = ", ".join(name for name in WORKLOADS if name)
        raise ValueError(f"no example {example!r}: EXAMPLE is one of {known} (or empty)")
    return WORKLOADS[example]


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def stack_manifest(
    *,
    refs: dict[str, str],
    host: str,
    port: int,
    user: str,
    dbname: str,
    example: str = "",
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """The workload's stack in ``namespace``, on the local images and PostgreSQL."""
    chosen = workload(example)
    stack: dict[str, Any] = yaml.safe_load(chosen.manifest.read_text())
    stack["metadata"]["namespace"] = namespace
    spec = stack["spec"]
    spec["api"]["image"] = refs[chosen.image]
    spec["redis"]["managed"]["image"] = refs["redis"]
    spec["redis"]["managed"]["exporter"] = {"image": refs["redis-exporter"]}
    spec["pgbouncer"]["image"] = refs["pgbouncer"]
    spec["pgbouncer"]["exporter"] = {"image": refs["pgbouncer-exporter"]}
    spec["pgbouncer"]["database"].update({"host": host, "port": port, "user": user, "name": dbname})
    workers = spec["workers"]
    workers.update(
        {
            "maxReplicas": MAX_WORKERS,
            "concurrency": WORKER_CONCURRENCY,
            "env": [{"name": chosen.job_ms_env, "value": str(JOB_MS)}],
        }
    )
    if "jobsPerWorkerPerSecond" in workers.get("autoscaling", {}):
        # The manifest states its own jobs' rate; the demo's jobs are slower.
        workers["autoscaling"]["jobsPerWorkerPerSecond"] = WORKER_CONCURRENCY * 1000 // JOB_MS
    # verify-full, the default once a CA is given: the name is the address in the certificate.
    spec["pgbouncer"]["tls"] = {
        "ca": {"configMapKeyRef": {"name": "demo-postgres-ca", "key": "ca.crt"}}
    }
    return stack


def _apply(cp: controlplane.ControlPlane, name: str, manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` to ``demo-<name>.yaml`` in the run folder, apply it; return the file."""
    path = cp.run_dir / f"demo-{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cp.kubectl("apply", "--server-side", "-f", str(path))
    return path


def install_operator(cp: controlplane.ControlPlane, *, image: str, log_dir: Path) -> None:
    """``helm upgrade --install`` the chart with the local operator image; wait for its pod.

    Raises RuntimeError with helm's output when the release does not become ready.
    """
    repository, tag = image.rsplit(":", 1)
    argv = [
        str(cp.bin_dir / "helm"), "upgrade", "--install", RELEASE, str(CHART),
        "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
        "--kubeconfig", str(cp.kubeconfig),
        # --set-string: a tag of digits alone (an input hash) is a string, not a number.
        "--set-string", f"image.repository={repository}", "--set-string", f"image.tag={tag}",
        "--set", "image.pullPolicy=IfNotPresent",
        "--set", "retrySeconds=3",
        "--set-json", 'nodeSelector={"retention.dev/node-kind":"real"}',
        "--wait", "--timeout", "180s",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    (log_dir / "helm-install.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"helm install failed:\n{done.stdout}{done.stderr}")


def _stack(cp: controlplane.ControlPlane, name: str, namespace: str) -> dict[str, Any]:
    out = cp.kubectl("get", "rstack", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def _ready_condition(stack: dict[str, Any]) -> dict[str, Any]:
    for condition in stack.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready":
            return dict(condition)
    return {}


def wait_ready(
    cp: controlplane.ControlPlane,
    *,
    timeout: float,
    stack: str = "demo",
    namespace: str = NAMESPACE,
) -> bool:
    """Wait until the stack is Ready=True, saying each new reason it waits for."""
    deadline = time.monotonic() + timeout
    said = ""
    while time.monotonic() < deadline:
        ready = _ready_condition(_stack(cp, stack, namespace))
        if ready.get("status") == "True":
            return True
        now = f"{ready.get('reason', 'no status yet')}: {ready.get('message', '')}".strip(": ")
        if now != said:
            _say(f"waiting for the stack ({now})")
            said = now
        time.sleep(2)
    return False


def service_url(cp: controlplane.ControlPlane, name: str, namespace: str = NAMESPACE) -> str:
    svc = json.loads(cp.kubectl("get", "service", name, "-n", namespace, "-o", "json"))
    port = svc["spec"]["ports"][0]["port"]
    return f"http://{svc['spec']['clusterIP']}:{port}"


@dataclass(frozen=True)
class Deployed:
    """A workload's stack running in the demo's cluster: where, the file applied, its job."""

    example: str
    stack: str
    namespace: str
    manifest: Path
    job_id: str

    @property
    def workload(self) -> Workload:
        return workload(self.example)


def send_one_job(
    cp: controlplane.ControlPlane,
    postgres: PostgresServer,
    *,
    example: str = "",
    stack: str = "demo",
    namespace: str = NAMESPACE,
    timeout: float = 60,
) -> str:
    """POST one job to the stack's API Service and wait until it is done; return its id.

    Done is the job's row in PostgreSQL for the project's workers, and BullMQ's
    completed set for the BullMQ example (read in a Redis pod). The host reaches
    Service addresses through the real node's veth (kube-proxy there routes
    them). Raises RuntimeError if the job is not done in time.
    """
    task = f"demo-{uuid.uuid4().hex[:8]}"
    url = service_url(cp, naming.api(stack), namespace)
    path = workload(example).jobs_path
    (job_id,) = asyncio.run(jobload.post_jobs(url, 1, task=task, path=path)).ids
    if example == "bullmq":
        done = _bullmq_completed(cp, stack, namespace, job_id, timeout=timeout)
    else:
        done = jobload.wait_rows(postgres, task, 1, timeout=timeout)[0] == 1
    if done:
        return job_id
    raise RuntimeError(f"job {job_id} was accepted but was not done within {timeout:.0f}s")


def _bullmq_completed(
    cp: controlplane.ControlPlane, stack: str, namespace: str, job_id: str, *, timeout: float
) -> bool:
    """True once BullMQ's completed set of the stack's queue holds ``job_id``."""
    queue = _stack(cp, stack, namespace)["spec"]["workers"]["queue"]["bullmq"]
    key = f"{queue.get('prefix', 'bull')}:{queue['name']}:completed"
    pod = f"{naming.redis(stack)}-0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        score = redis_cli(cp, pod, "-c", "ZSCORE", key, job_id, namespace=namespace).strip()
        if score:
            return True
        time.sleep(1)
    return False


@dataclass
class Demo:
    """A running demo: its cluster, its PostgreSQL and its CA, the images, the stack deployed."""

    cp: controlplane.ControlPlane
    postgres: PostgresServer
    postgres_ca: str
    refs: dict[str, str]
    deployed: Deployed
    seconds: float

    @property
    def job_id(self) -> str:
        return self.deployed.job_id


def deploy(
    cp: controlplane.ControlPlane,
    postgres: PostgresServer,
    *,
    postgres_ca: str,
    refs: dict[str, str],
    example: str = "",
    namespace: str = NAMESPACE,
) -> Deployed:
    """Run the workload's stack in ``namespace`` (Pod Security ``restricted``): wait for Ready,
    send one job through it. ``refs`` must hold the workload's image, loaded into the node.

    Raises RuntimeError when the stack is not Ready in time or the job is not done.
    """
    assert cp.node is not None, "the demo runs on a cluster with its real node"
    _apply(cp, f"namespace-{namespace}", restricted_namespace(namespace))
    manifest = stack_manifest(
        refs=refs,
        # Pods reach the host only at its end of the node's veth.
        host=cp.node.net.host_ip,
        port=postgres.port,
        user=postgres.user,
        dbname=postgres.dbname,
        example=example,
        namespace=namespace,
    )
    stack = manifest["metadata"]["name"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": manifest["spec"]["pgbouncer"]["credentialsSecretRef"]["name"],
            "namespace": namespace,
        },
        "stringData": {"password": postgres.password},
    }
    _apply(cp, f"secret-{namespace}", secret)
    ca = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "demo-postgres-ca", "namespace": namespace},
        "data": {"ca.crt": postgres_ca},
    }
    _apply(cp, f"postgres-ca-{namespace}", ca)
    applied = _apply(cp, f"stack-{namespace}", manifest)
    if not wait_ready(cp, timeout=READY_TIMEOUT_S, stack=stack, namespace=namespace):
        raise RuntimeError(
            f"the stack was not Ready within {READY_TIMEOUT_S} s; "
            f"see `kubectl describe rstack {stack} -n {namespace}`"
        )
    job_id = send_one_job(cp, postgres, example=example, stack=stack, namespace=namespace)
    return Deployed(
        example=example, stack=stack, namespace=namespace, manifest=applied, job_id=job_id
    )


def start(run_dir: Path, *, example: str = "") -> Demo:
    """Start the demo (a running or crashed one is stopped first) and return it once Ready.

    ``example`` picks what runs as the API and workers (:data:`WORKLOADS`).
    Raises ValueError for an unknown example (before anything starts),
    RuntimeError (or NotReady, with a server's log tail) when a part does not
    come up; what did start stays up for ``down`` to stop.
    """
    chosen = workload(example)
    down(run_dir, quiet=True)
    began = time.monotonic()
    cp = controlplane.ensure_control_plane(run_dir / "cluster", real_node=True)
    assert cp.node is not None
    net = cp.node.net
    _say(f"control plane at {cp.server}, real node {net.node_ip} in network namespace {net.netns}")
    built = images.build(["operator", chosen.image, *STACK_IMAGES])
    images.import_into(list(built.values()), address=cp.node.containerd_address)
    refs = {name: image.ref for name, image in built.items()}
    _say("images loaded into the node: " + ", ".join(refs.values()))
    # Like a hosted PostgreSQL: TLS with a certificate for the address the
    # pods use, signed by a CA the stack is given (so PgBouncer verifies it).
    tls = pki.create_server_tls(run_dir / "postgres-tls", hosts=[net.host_ip], ca_name="demo-ca")
    postgres = start_postgres(
        base_dir=run_dir / "postgres", listen=(net.host_ip,), clients=(net.cluster_cidr,), tls=tls
    )
    state: dict[str, Any] = {"pids": {"postgres": postgres.pid}}
    state["postgres_root"] = str(postgres.root)
    (run_dir / "demo.json").write_text(json.dumps(state))
    _say(f"PostgreSQL on {net.host_ip}:{postgres.port}")
    _apply(cp, f"namespace-{OPERATOR_NAMESPACE}", restricted_namespace(OPERATOR_NAMESPACE))
    install_operator(cp, image=refs["operator"], log_dir=run_dir)
    _say(f"operator installed from the chart in namespace {OPERATOR_NAMESPACE}")
    ca = tls.ca_cert.read_text()
    deployed = deploy(cp, postgres, postgres_ca=ca, refs=refs, example=example)
    state["stack"] = {"example": example, "name": deployed.stack, "namespace": deployed.namespace}
    (run_dir / "demo.json").write_text(json.dumps(state))
    into = "" if example else " into PostgreSQL"
    _say(f"job {deployed.job_id} went through the API, Redis and a worker{into}")
    return Demo(
        cp=cp,
        postgres=postgres,
        postgres_ca=ca,
        refs=refs,
        deployed=deployed,
        seconds=time.monotonic() - began,
    )


def redis_cli(
    cp: controlplane.ControlPlane, pod: str, *args: str, namespace: str = NAMESPACE
) -> str:
    """Run ``redis-cli`` in one Redis pod of a demo stack and return its output.

    The password is the one the pod mounts, read inside the container: as an argument
    of ``kubectl exec`` it would stand in the command line and in any failure's message.
    """
    password = f"{redis.AUTH_DIR}/{naming.REDIS_PASSWORD_KEY}"
    script = f'REDISCLI_AUTH="$(cat {password})" exec redis-cli "$@"'
    return cp.kubectl(
        "exec", "-n", namespace, pod, "-c", names.COMPONENT_REDIS, "--",
        "sh", "-c", script, "redis-cli", *args,
    )  # fmt: skip


def restricted_namespace(name: str) -> dict[str, Any]:
    """A namespace that enforces Pod Security ``restricted``."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }


def up(run_dir: Path, *, example: str = "") -> int:
    """``make demo``: start it, show the stack and say what to try next; KUBECONFIG= last."""
    try:
        demo = start(run_dir, example=example)
    except (ValueError, RuntimeError, NotReady) as exc:
        _say(f"failed: {exc}")
        return 1
    cp, stack = demo.cp, demo.deployed.stack
    print(cp.kubectl("get", "rstack", "-A"), file=sys.stderr)
    print(cp.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide"), file=sys.stderr)
    api = service_url(cp, naming.api(stack))
    post = f"{api}{demo.deployed.workload.jobs_path} -H 'content-type: application/json'"
    _say(
        f"Ready in {demo.seconds:.0f} s. Next:\n"
        f"  export KUBECONFIG={cp.kubeconfig} PATH={cp.bin_dir}:$PATH\n"
        f"  kubectl get rstack -A; kubectl describe rstack {stack} -n {NAMESPACE}\n"
        f"  kubectl logs -n {OPERATOR_NAMESPACE} deploy/{RELEASE}     # JSON, one line each\n"
        f"  curl -s {api}/readyz; curl -s -XPOST {post}"
        """ -d '{"task":"hello","payload":{}}'\n"""
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
    state_path = run_dir / "demo.json"
    if cp is None or not cp.healthy() or not state_path.exists():
        _say("no demo is running: `make demo` first")
        return 1
    running = json.loads(state_path.read_text()).get("stack", {})
    example, stack = running.get("example", ""), running.get("name", "demo")
    namespace = running.get("namespace", NAMESPACE)
    task = f"load-{uuid.uuid4().hex[:8]}"
    began = time.monotonic()
    start = workers_state(cp, stack, namespace)[0]
    url, path = service_url(cp, naming.api(stack), namespace), workload(example).jobs_path
    posted = asyncio.run(jobload.post_jobs(url, jobs, task=task, path=path))
    _say(f"{len(posted.ids)} jobs accepted in {time.monotonic() - began:.1f} s")
    settled = 0
    while time.monotonic() - began < watch_seconds and settled < 3:
        wanted, ready, backlog, reason = workers_state(cp, stack, namespace)
        _say(
            f"t={time.monotonic() - began:4.0f} s  backlog {backlog:>5}  "
            f"workers {wanted} wanted, {ready} ready  {reason[:90]}"
        )
        settled = settled + 1 if backlog in (0, "0") and wanted == start else 0
        time.sleep(5)
    return 0


def workers_state(
    cp: controlplane.ControlPlane, stack: str, namespace: str
) -> tuple[str, str, str, str]:
    """The workers' wanted and ready replicas, the backlog and the last reason (or '?')."""
    status = _stack(cp, stack, namespace).get("status", {})
    workers = status.get("autoscaling", {}).get("workers", {})
    out = cp.kubectl(
        "get", "deployment", naming.workers(stack), "-n", namespace,
        "-o", "jsonpath={.spec.replicas} {.status.readyReplicas}", check=False,
    ).split()  # fmt: skip
    wanted, ready = [*out, "?", "?"][:2]
    return wanted, ready, str(workers.get("backlog", "?")), str(workers.get("lastReason", ""))
