"""Fixtures of the fault tests: a control plane of their own, and operators to kill.

The fault tests restart the API server and etcd and SIGKILL operators, so they
run on a control plane of their own (its API server writes the audit log of
:mod:`harness.audit`), never on the session's, whose operator and secret sweep
the other e2e tests share. ``control_plane`` is overridden here, so the
``namespace``, ``api_client`` and ``kubeconfig`` fixtures give this one.

Each operator a test starts logs in with a client certificate of its own
(user ``identity``), so every write in the audit log names the replica that sent it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

import retention_contract as contract
from harness import audit
from harness import pki as pki_mod
from harness.controlplane import ControlPlane, start_control_plane, write_kubeconfig
from harness.fixtures_cluster import CRD_PATH
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import stack_manifest, wait_for

Manifest = dict[str, Any]
PEERING_CRDS = (
    CRD_PATH.parents[1] / "charts" / "retention-operator" / "crds" / "kopf.dev_peerings.yaml"
)
# The kinds a stack's children are of (Secrets too: a managed Redis's password).
CHILD_KINDS = (
    "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets,networkpolicies"
)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane for the fault tests alone, with the audit log, the stack CRD and
    kopf's peering CRDs; every test leaves its processes running."""
    cp = start_control_plane(tmp_path_factory.mktemp("faults-controlplane"), audit=True)
    try:
        cp.kubectl("apply", "--server-side", "-f", str(CRD_PATH), "-f", str(PEERING_CRDS))
        cp.wait_established(
            "retentionstacks.retention.dev", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"
        )
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def operators(
    control_plane: ControlPlane, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """A factory ``(identity, env=...) -> OperatorProcess`` (not started); all stopped after.

    The operator authenticates as user ``identity`` (in ``system:masters``).
    """
    made: list[OperatorProcess] = []
    pki = pki_mod.load(control_plane.run_dir / "pki")

    def make(identity: str, *, env: dict[str, str] | None = None) -> OperatorProcess:
        leaf = pki_mod.issue(
            pki, f"faults-{identity}", common_name=identity, organization="system:masters"
        )
        kubeconfig = tmp_path / f"{identity}.kubeconfig"
        write_kubeconfig(
            kubeconfig, server=control_plane.server, pki=pki, cert=leaf.cert, key=leaf.key
        )
        proc = OperatorProcess(kubeconfig=kubeconfig, log_dir=tmp_path / identity, env=env or {})
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.stop()


def children(cp: ControlPlane, namespace: str, stack: str) -> dict[tuple[str, str], Any]:
    """The stack's children by (kind, name), as stored (one kubectl list of every kind)."""
    out = cp.kubectl(
        "get", CHILD_KINDS, "-n", namespace, "-l", f"retention.dev/stack={stack}", "-o", "json"
    )
    return {(o["kind"], o["metadata"]["name"]): o for o in json.loads(out)["items"]}


def shape(found: dict[tuple[str, str], Any], stack: str) -> set[tuple[str, str]]:
    """(kind, name with the stack's name taken out): comparable between two stacks."""
    return {(kind, name.replace(stack, "<stack>", 1)) for kind, name in found}


Children = dict[tuple[str, str], Any]


def lost_children(before: Children, after: Children) -> list[str]:
    """Children present before a fault that are gone or were made again (another uid)."""
    return [
        f"{kind}/{name}"
        for (kind, name), obj in before.items()
        if (kind, name) not in after
        or after[(kind, name)]["metadata"]["uid"] != obj["metadata"]["uid"]
    ]


def quiet_resync(
    cp: ControlPlane, operators: Callable[..., OperatorProcess], namespace: str, *, stacks: int
) -> list[str]:
    """Start one more operator, let it resume every stack; return the writes it sent."""
    check = operators("operator-check")
    check.start()
    reconciles = "controller_runtime_reconcile_total{"
    wait_for(
        lambda: (
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in check.metrics_text().splitlines()
                if line.startswith(reconciles)
            )
            >= stacks
        ),
        timeout=60,
        what="the checking operator to resume the stacks",
    )
    time.sleep(3)  # What a resume would correct goes out at once; give it time to show.
    check.stop()
    return [
        f"{w.verb} {w.resource}{'/' + w.subresource if w.subresource else ''}/{w.name}"
        f" ({w.field_manager or 'no field manager'})"
        for w in writes_by(cp, "operator-check", namespace)
    ]


def wait_quiet(
    cp: ControlPlane, user: str, namespace: str, *, quiet: float = 3.0, timeout: float = 60.0
) -> None:
    """Wait until ``user`` has sent no write into ``namespace`` for ``quiet`` seconds.

    A stack is Ready before the last of the writes that follow it have gone out
    (the autoscaler's first tick writes ``status.autoscaling`` a tick later):
    an operator stopped in between leaves the next one to send them, which is
    finishing its work, not correcting it (seen: a stop 0.5 s after Ready, and
    the next operator's first tick patched the status). :func:`quiet_resync`
    asks about an operator stopped after this.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = max((w.at for w in writes_by(cp, user, namespace)), default=None)
        idle = (dt.datetime.now(dt.UTC) - last).total_seconds() if last else quiet
        if idle >= quiet:
            return
        assert time.monotonic() < deadline, f"{user} still writing into {namespace}"
        time.sleep(0.5)


def writes_by(cp: ControlPlane, user: str, namespace: str) -> list[audit.Write]:
    """The successful writes ``user`` sent into ``namespace``, Events left out."""
    return [
        w
        for w in audit.writes(cp.audit_log)
        if w.user == user and w.namespace == namespace and w.resource != "events" and w.succeeded
    ]


# The queue stack of the tick tests: its backlog is in the stream before it exists.
BACKLOG = 120
# 120 jobs to drain in 30 s at 1 job/s per worker.
SCALED = 4
HOLD_TICKS = 6
WORKERS = {
    "autoscaling": {
        "jobsPerWorkerPerSecond": 1,
        "targetDrainSeconds": 30,
        # The oldest job's age never shortens the drain time here: the queue stays as it
        # was, so that the first decision is the only one there is.
        "targetQueueWaitSeconds": 3600,
        "scaleDownStabilizationSeconds": 60,
    }
}


def replica_writes(cp: ControlPlane, namespace: str, deployment: str) -> list[audit.Write]:
    """Writes of the autoscaler's field manager (initial replicas and scales) to a Deployment."""
    return [
        w
        for w in audit.writes(cp.audit_log)
        if w.resource == "deployments"
        and w.namespace == namespace
        and w.name == deployment
        and w.field_manager == "retention-autoscaler"
        and w.succeeded
    ]


def queue_stack(namespace: str, *, postgres: PostgresServer, redis: RedisServer) -> Manifest:
    """The stack ``queue`` whose stream already holds :data:`BACKLOG` jobs nobody takes."""
    with redis.client() as conn:
        stream = contract.default_stream(namespace, "queue")
        conn.xgroup_create(stream, "workers", id="0", mkstream=True)
        pipe = conn.pipeline(transaction=False)
        for n in range(BACKLOG):
            pipe.xadd(stream, {"job": str(n)})
        pipe.execute()
    return stack_manifest(
        "queue", namespace, postgres=postgres, redis_url=redis.url, workers=WORKERS
    )


class WatchTrigger:
    """Run ``action`` on the first object of a watch for which ``check`` holds.

    ``list_fn`` is a namespaced list call of the kubernetes client; the watch
    starts from its current resourceVersion, so an event between this call and
    the test's next step is not missed. A watch event reaches the test as the
    write's response reaches its sender, which a poll could not match.
    """

    def __init__(
        self,
        list_fn: Callable[..., Any],
        namespace: str,
        check: Callable[[Any], bool],
        action: Callable[[], None],
        *,
        timeout: float,
    ) -> None:
        self.fired_at: float | None = None
        self.error: BaseException | None = None
        self._timeout = timeout
        version = list_fn(namespace).metadata.resource_version
        self._thread = threading.Thread(
            target=self._run, args=(list_fn, namespace, version, check, action), daemon=True
        )
        self._thread.start()

    def _run(
        self,
        list_fn: Callable[..., Any],
        namespace: str,
        version: str,
        check: Callable[[Any], bool],
        action: Callable[[], None],
    ) -> None:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            list_fn, namespace, resource_version=version, timeout_seconds=int(self._timeout)
        )
        try:
            for event in stream:
                if check(event["object"]):
                    action()
                    self.fired_at = time.monotonic()
                    return
        except Exception as exc:  # Kept for wait()'s message.
            self.error = exc

    def wait(self) -> float:
        """Wait for the action; return its monotonic time, or fail saying it never came."""
        self._thread.join(self._timeout + 5)
        assert self.fired_at is not None, f"the fault never fired: {self.error!r}"
        return self.fired_at


HELD = "held by the fault test"


@contextlib.contextmanager
def deployment_writes_refused(api_client: client.ApiClient, namespace: str) -> Iterator[None]:
    """Refuse every create and update of a Deployment in ``namespace`` while inside.

    A ValidatingAdmissionPolicy (the API server's own admission, nothing in front of
    it) holds a reconcile between its waves: the first wave's children are stored,
    the workloads are not, however fast the operator goes on. A kill timed by a
    watch alone raced the operator's next write (seen on a CI run: both images
    written before the SIGKILL landed). The policy is in force before this yields
    and gone when it returns, each seen by a server-side dry-run create.
    """
    admission = client.AdmissionregistrationV1Api(api_client)
    name = f"faults-hold-{namespace}"[:63]
    message = f"Deployments in {namespace} are {HELD}"
    admission.create_validating_admission_policy(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "resourceRules": [
                        {
                            "apiGroups": ["apps"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["deployments"],
                        }
                    ],
                },
                "validations": [{"expression": "false", "message": message}],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": name, "validationActions": ["Deny"]},
        }
    )
    try:
        wait_for(
            lambda: not _dry_run_deployment(api_client, namespace),
            timeout=30,
            interval=0.2,
            what="the admission policy holding Deployments in force",
        )
        yield
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)
    wait_for(
        lambda: _dry_run_deployment(api_client, namespace),
        timeout=30,
        interval=0.2,
        what="the admission policy holding Deployments gone",
    )


def _dry_run_deployment(api_client: client.ApiClient, namespace: str) -> bool:
    """Whether a Deployment create in ``namespace`` is admitted (dry run: nothing stored)."""
    labels = {"app": "faults-hold-probe"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "faults-hold-probe"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "probe", "image": "example.invalid/probe:1"}]},
            },
        },
    }
    try:
        client.AppsV1Api(api_client).create_namespaced_deployment(namespace, body, dry_run="All")
    except client.ApiException as exc:
        if HELD in str(exc.body):
            return False
        raise
    return True
