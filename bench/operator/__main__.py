"""``python -m bench.operator``: time to reconcile N new stacks on the local control plane.

Starts the control plane (KWOK nodes), a PostgreSQL and a Redis on loopback,
and the operator as a subprocess; applies N stacks (external Redis, so each
can become Ready) in one ``kubectl apply``; and measures the time until every
stack has its Deployments, until every stack is Ready, and the operator's
mutating requests for a no-op resync after a restart. Prints one JSON object.
Bounded: it gives up after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from harness.controlplane import REPO_ROOT, start_control_plane
from harness.operator import OperatorProcess
from harness.postgres_servers import start_postgres
from harness.redis_servers import start_redis


def _stack(name: str, namespace: str, *, db: Any, redis_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "api": {"image": "example.invalid/workloads:1", "minReplicas": 2, "maxReplicas": 6},
            "workers": {"minReplicas": 1, "maxReplicas": 8},
            "redis": {"external": {"url": redis_url}},
            "pgbouncer": {
                "replicas": 1,
                "database": {"host": db.host, "port": db.port, "name": db.dbname, "user": db.user},
                "credentialsSecretRef": {"name": "db"},
            },
        },
    }


def _counts(cp: Any, namespace: str) -> tuple[int, int]:
    """(stacks whose Deployments all exist, stacks Ready at their generation)."""
    stacks = json.loads(cp.kubectl("get", "rstack", "-n", namespace, "-o", "json"))["items"]
    deployments = json.loads(cp.kubectl("get", "deployments", "-n", namespace, "-o", "json"))
    per_stack: dict[str, int] = {}
    for d in deployments["items"]:
        stack = d["metadata"]["labels"].get("retention.dev/stack", "")
        per_stack[stack] = per_stack.get(stack, 0) + 1
    with_children = sum(1 for n in per_stack.values() if n >= 3)
    ready = 0
    for s in stacks:
        status = s.get("status") or {}
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        if (
            conds.get("Ready") == "True"
            and status.get("observedGeneration") == s["metadata"]["generation"]
        ):
            ready += 1
    return with_children, ready


def run(count: int, timeout: float) -> dict[str, Any]:
    """Run the benchmark once and return its figures."""
    base = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    # Four pods a stack and 110 pods a KWOK node: give every stack room to run.
    cp = start_control_plane(base / "cluster", nodes=max(3, count * 4 // 100 + 2))
    db = redis = op = None
    try:
        cp.kubectl(
            "apply",
            "--server-side",
            "-f",
            str(REPO_ROOT / "crds/retention.dev_retentionstacks.yaml"),
        )
        cp.kubectl("wait", "--for=condition=Established", "crd/retentionstacks.retention.dev")
        db = start_postgres(base_dir=base / "postgres")
        redis = start_redis(base_dir=base / "redis")
        op = OperatorProcess(kubeconfig=cp.kubeconfig, log_dir=base / "operator")
        op.start()
        namespace = "bench"
        cp.kubectl("create", "namespace", namespace)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": namespace},
            "stringData": {"password": db.password},
        }
        items = [secret] + [
            _stack(f"s{i:03d}", namespace, db=db, redis_url=redis.url) for i in range(count)
        ]
        path = base / "stacks.yaml"
        path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
        began = time.monotonic()
        cp.kubectl("apply", "--server-side", "-f", str(path), timeout=120)
        applied = time.monotonic() - began
        children_at = ready_at = None
        while time.monotonic() - began < timeout:
            with_children, ready = _counts(cp, namespace)
            now = time.monotonic() - began
            if children_at is None and with_children >= count:
                children_at = now
            if ready >= count:
                ready_at = now
                break
            time.sleep(1)
        writes_before = op.mutating_requests()
        op.restart()
        time.sleep(min(30.0, 5 + count * 0.2))
        return {
            "stacks": count,
            "apply_s": round(applied, 1),
            "all_children_exist_s": None if children_at is None else round(children_at, 1),
            "all_ready_s": None if ready_at is None else round(ready_at, 1),
            "mutating_requests_to_create": writes_before,
            "mutating_requests_noop_resync_after_restart": op.mutating_requests(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        }
    finally:
        for server in (op, redis, db):
            if server is not None:
                server.stop()
        cp.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__)
    parser.add_argument("--stacks", type=int, default=100, help="how many stacks to create")
    parser.add_argument(
        "--timeout", type=float, default=600, help="give up after this many seconds"
    )
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args(argv)
    result = run(args.stacks, args.timeout)
    print(json.dumps(result))
    return 0 if result["all_ready_s"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
