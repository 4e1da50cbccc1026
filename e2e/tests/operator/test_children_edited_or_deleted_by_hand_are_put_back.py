"""A child edited or deleted by hand is put back within 30 s, with an Event; foreign fields stay.

Each edit is made as a user would (``kubectl edit`` with a scripted editor,
``kubectl set``, ``kubectl patch``, ``kubectl delete``), under kubectl's own
field managers; nothing changes the stack's spec. The test prints the seconds
each repair took and fails over 30.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import events, ready_stack, stack_manifest, wait_for

pytestmark = pytest.mark.e2e
WITHIN = 30.0
REASON = "DriftCorrected"
# Quantities in a form the API server rewrites (0.5 -> 500m, 1024Mi -> 1Gi):
# an untouched child must still show no drift.
RESOURCES = {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "2Gi"}}


def _get(cp: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    out = cp.kubectl_run("get", kind, name, "-n", namespace, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else None


def _corrected_total(operator: OperatorProcess) -> float:
    for line in operator.metrics_text().splitlines():
        if line.startswith("retention_operator_drift_corrected_total "):
            return float(line.split()[1])
    return 0.0


def _corrections(core: client.CoreV1Api, namespace: str) -> list[str]:
    return [str(e.message) for e in events(core, namespace, reason=REASON)]


def _repaired(
    cp: ControlPlane,
    core: client.CoreV1Api,
    namespace: str,
    *,
    what: str,
    restored: Callable[[], bool],
    named: str,
) -> float:
    """Wait until ``restored()`` and an Event naming ``named``; return the seconds it took."""
    began = time.monotonic()
    wait_for(restored, timeout=WITHIN, interval=0.25, what=f"{what} put back")
    wait_for(
        lambda: any(named in m for m in _corrections(core, namespace)),
        timeout=WITHIN,
        interval=0.25,
        what=f"a {REASON} Event naming {named}",
    )
    seconds = time.monotonic() - began
    print(f"\n{what}: put back in {seconds:.1f}s")
    assert seconds <= WITHIN
    return seconds


def _kubectl_edit(cp: ControlPlane, kind: str, name: str, namespace: str, script: str) -> None:
    """``kubectl edit`` with an editor that runs ``script`` (Python, the file path in argv[1])."""
    editor = f"{sys.executable} -c {json.dumps(script)}"
    result = subprocess.run(
        [
            str(cp.bin_dir / "kubectl"),
            "--kubeconfig",
            str(cp.kubeconfig),
            "edit",
            kind,
            name,
            "-n",
            namespace,
            "--output",
            "json",
        ],
        env={**os.environ, "KUBE_EDITOR": editor},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_hand_edits_and_deletions_are_put_back_and_foreign_labels_stay(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_standalone: RedisServer,
) -> None:
    cp, core = control_plane, client.CoreV1Api(api_client)
    manifest = stack_manifest(
        "hand",
        namespace,
        postgres=postgres,
        redis=redis_standalone,
        api={"resources": RESOURCES},
        workers={"resources": RESOURCES},
    )
    ready_stack(cp, api_client, manifest, password=postgres.password)
    # Another field manager's label, on a child the operator owns.
    cp.kubectl("label", "deployment", "hand-api", "-n", namespace, "team.example/owner=payments")
    time.sleep(3)
    assert _corrections(core, namespace) == [], "an untouched child was 'corrected'"

    # The image, through kubectl edit.
    _kubectl_edit(
        cp,
        "deployment",
        "hand-api",
        namespace,
        "import json,sys; p=sys.argv[1]; d=json.load(open(p)); "
        "d['spec']['template']['spec']['containers'][0]['image']='evil.invalid/miner:6'; "
        "json.dump(d, open(p, 'w'))",
    )

    def api_image() -> str:
        found = _get(cp, "deployment", "hand-api", namespace) or {}
        return str(found["spec"]["template"]["spec"]["containers"][0]["image"])

    _repaired(
        cp,
        core,
        namespace,
        what="Deployment image",
        restored=lambda: api_image() == "example.invalid/workloads:1",
        named="spec.template.spec.containers[api].image",
    )
    labels = (_get(cp, "deployment", "hand-api", namespace) or {})["metadata"]["labels"]
    assert labels.get("team.example/owner") == "payments", "another manager's label was lost"

    # Resources, through kubectl set.
    cp.kubectl("set", "resources", "deployment/hand-workers", "-n", namespace, "--requests=cpu=3")

    def worker_cpu() -> str:
        found = _get(cp, "deployment", "hand-workers", namespace) or {}
        return str(
            found["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        )

    _repaired(
        cp,
        core,
        namespace,
        what="Deployment resources",
        restored=lambda: worker_cpu() == "500m",
        named="containers[workers].resources.requests.cpu",
    )

    # The PgBouncer configuration, a Service's port and the PDB, through kubectl patch.
    cp.kubectl("patch", "configmap", "hand-pgbouncer-config", "-n", namespace, "--type=merge",
               "-p", json.dumps({"data": {"pgbouncer.ini": "[databases]\n"}}))  # fmt: skip
    _repaired(
        cp,
        core,
        namespace,
        what="PgBouncer ConfigMap",
        restored=lambda: (
            "pool_mode"
            in (
                (_get(cp, "configmap", "hand-pgbouncer-config", namespace) or {}).get("data") or {}
            ).get("pgbouncer.ini", "")
        ),
        named="ConfigMap hand-pgbouncer-config: data.pgbouncer.ini",
    )
    port = '[{"op": "replace", "path": "/spec/ports/0/port", "value": 9999}]'
    cp.kubectl("patch", "service", "hand-api", "-n", namespace, "--type=json", "-p", port)
    _repaired(
        cp,
        core,
        namespace,
        what="Service port",
        restored=lambda: (
            (_get(cp, "service", "hand-api", namespace) or {})["spec"]["ports"][0]["port"] == 8080
        ),
        named="Service hand-api: spec.ports[http].port",
    )
    cp.kubectl("patch", "pdb", "hand-pgbouncer", "-n", namespace, "--type=merge",
               "-p", '{"spec": {"maxUnavailable": 0}}')  # fmt: skip
    _repaired(
        cp,
        core,
        namespace,
        what="PodDisruptionBudget",
        restored=lambda: (
            (_get(cp, "pdb", "hand-pgbouncer", namespace) or {})["spec"].get("maxUnavailable") == 1
        ),
        named="PodDisruptionBudget hand-pgbouncer: spec.maxUnavailable",
    )

    # Deleted children come back.
    for kind, name in (("Service", "hand-pgbouncer"), ("Deployment", "hand-workers")):
        cp.kubectl("delete", kind.lower(), name, "-n", namespace, "--wait=true")
        _repaired(
            cp,
            core,
            namespace,
            what=f"deleted {kind}",
            restored=lambda kind=kind, name=name: (
                _get(cp, kind.lower(), name, namespace) is not None
            ),
            named=f"{kind} {name}: recreated",
        )

    # Nothing keeps being corrected once everything is back.
    settled = _corrected_total(operator)
    time.sleep(4)
    assert _corrected_total(operator) == settled, "the operator kept correcting after the repairs"
    labels = (_get(cp, "deployment", "hand-api", namespace) or {})["metadata"]["labels"]
    assert labels.get("team.example/owner") == "payments"
