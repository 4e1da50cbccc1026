"""``make demo``: the local control plane, the operator and a sample stack.

What it starts, all on 127.0.0.1 and all outliving this command: the control
plane (KWOK nodes), a PostgreSQL for the stack's PgBouncer to point at, and
the operator. It applies ``crds/samples/minimal.yaml`` into namespace
``demo`` (database host and port rewritten to the local PostgreSQL), waits
until the stack's children exist, and prints how to look at them.
``make demo-down`` stops everything it started.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from harness import controlplane
from harness.operator import OperatorProcess
from harness.postgres_servers import start_postgres
from harness.procs import stop_group

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "crds" / "samples" / "minimal.yaml"
CRD = REPO / "crds" / "retention.dev_retentionstacks.yaml"
NAMESPACE = "demo"


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _sample(host: str, port: int, user: str, dbname: str) -> dict[str, Any]:
    stack: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    stack["metadata"]["namespace"] = NAMESPACE
    stack["spec"]["pgbouncer"]["database"].update(
        {"host": host, "port": port, "user": user, "name": dbname}
    )
    return stack


def _apply(cp: controlplane.ControlPlane, name: str, manifest: dict[str, Any]) -> None:
    path = cp.run_dir / f"demo-{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cp.kubectl("apply", "--server-side", "-f", str(path))


def _children(cp: controlplane.ControlPlane) -> int:
    out = cp.kubectl("get", "deployments,statefulsets", "-n", NAMESPACE, "-o", "name", check=False)
    return len(out.split())


def up(run_dir: Path) -> int:
    """Start the demo (idempotent: a running demo is stopped first); print KUBECONFIG= last."""
    if (run_dir / "demo.json").exists():
        down(run_dir)
    cp = controlplane.ensure_control_plane(run_dir / "cluster")
    _say(f"control plane up at {cp.server}")
    cp.kubectl("apply", "--server-side", "-f", str(CRD))
    cp.kubectl("wait", "--for=condition=Established", "crd/retentionstacks.retention.dev")
    postgres = start_postgres(base_dir=run_dir / "postgres")
    _say(f"PostgreSQL on 127.0.0.1:{postgres.port}")
    operator = OperatorProcess(kubeconfig=cp.kubeconfig, log_dir=run_dir / "operator")
    operator.env["RETENTION_AUTOSCALER_TICK_SECONDS"] = "5"
    operator.start()
    assert operator.proc is not None
    state = {
        "pids": {"operator": operator.proc.pid, "postgres": postgres.pid},
        "postgres_root": str(postgres.root),
    }
    (run_dir / "demo.json").write_text(json.dumps(state))
    _say(f"operator running, JSON logs in {operator.proc.log_path}")
    cp.kubectl("create", "namespace", NAMESPACE, check=False)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "demo-postgres", "namespace": NAMESPACE},
        "stringData": {"password": postgres.password},
    }
    _apply(cp, "secret", secret)
    _apply(cp, "stack", _sample(postgres.host, postgres.port, postgres.user, postgres.dbname))
    deadline = time.monotonic() + 120
    while _children(cp) < 4:
        if time.monotonic() > deadline:
            _say("the stack's children did not appear within 120 s; see the operator log")
            return 1
        time.sleep(1)
    print(cp.kubectl("get", "rstack", "-A"), file=sys.stderr)
    print(cp.kubectl("get", "deployments,statefulsets,pods", "-n", NAMESPACE), file=sys.stderr)
    _say(
        "KWOK pods run no processes, so the managed Redis never answers and the stack "
        "says it waits for the cluster to form. Next:\n"
        f"  export KUBECONFIG={cp.kubeconfig} PATH={cp.bin_dir}:$PATH\n"
        "  kubectl get rstack -A; kubectl describe rstack demo -n demo\n"
        f"  tail -f {operator.proc.log_path}\n"
        "  make demo-down"
    )
    print(f"KUBECONFIG={cp.kubeconfig}")
    return 0


def down(run_dir: Path) -> int:
    """Stop the operator, PostgreSQL and the control plane. Returns 0 when nothing ran, too."""
    state_path = run_dir / "demo.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        for name, pid in state.get("pids", {}).items():
            stop_group(int(pid), timeout=15)
            _say(f"stopped {name}")
        state_path.unlink()
        # The data directory may belong to the postgres user; root removes it all the same.
        shutil.rmtree(state.get("postgres_root", ""), ignore_errors=True)
    cp = controlplane.ControlPlane.load(run_dir / "cluster")
    if cp is not None:
        cp.stop()
        _say("control plane stopped")
    return 0
