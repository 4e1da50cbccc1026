"""``python -m bench.operator``: N new stacks on the local control plane, at rest, and restarted.

Starts the control plane (enough KWOK nodes for four pods a stack), a
PostgreSQL (with TLS) and a Redis on loopback, installs the chart (RBAC only) and runs
the operator as a subprocess with the chart's ServiceAccount and the
production defaults (autoscaling tick 5 s, retries after 10 s). Applies N
stacks (external Redis, so each can become Ready) in one apply (:mod:`.applier`,
32 objects at a time) and reports:

- ``all_children_exist_s`` / ``all_ready_s``: seconds after the apply until
  every stack has its three Deployments / is Ready at its generation;
- ``at_rest``: over ``--idle-seconds`` once everything is Ready and quiet: the
  operator's CPU (seconds per minute and share of a core), the requests of
  its identity as the API server counted them (``apf_requests_per_min``,
  kopf's included) and as it counted them itself, its mutating requests, and
  the autoscaling tick's mean duration;
- ``peak_rss_mib`` of the operator process;
- ``restart``: after a restart over the N Ready stacks, the seconds until the
  operator is quiet again (every stack resumed, no request for 15 s) and the
  mutating requests it sent meanwhile (a no-op resync sends none).

The baseline, run first in the same command on a control plane of its own
(:mod:`.floor`), is no operator at all: the same children, rendered by the
operator's builders, applied by the same one apply: what the control plane
on this machine needs for that many objects. ``ratio`` divides the
operator's seconds by the floor's (1.0: the operator costs nothing on top).

Every figure carries the machine's load averages when it was taken: the
machine is shared. Prints one JSON object (``--markdown``: also table rows
for bench/operator/README.md). Bounded: each side gives up waiting after
``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.operator import identity
from bench.operator.applier import apply_all
from bench.operator.figures import Metrics, Profile, cpu_seconds, load, peak_rss_mib, tick_figures
from bench.operator.floor import run_floor
from harness.controlplane import REPO_ROOT, ControlPlane, start_control_plane
from harness.operator import OperatorProcess
from harness.pki import create_server_tls
from harness.postgres_servers import start_postgres
from harness.redis_servers import start_redis

NAMESPACE = "bench"
QUIET_SECONDS = 15.0
POLL_SECONDS = 5.0
# What a user gets from the chart: the operator's own defaults.
PRODUCTION_ENV = {"RETENTION_AUTOSCALER_TICK_SECONDS": "5", "RETENTION_RETRY_SECONDS": "10"}
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


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


def _counts(http: httpx.Client, server: str) -> tuple[int, int]:
    """(stacks whose three Deployments exist, stacks Ready).

    Read as server-side Tables (a row of printer columns per object): a list of
    a thousand full stacks every few seconds would load the API server that
    is being measured. Every stack here is new, at generation 1, and the
    operator writes Ready=True only once it has reconciled that generation.
    """
    deployments = http.get(
        f"{server}/apis/apps/v1/namespaces/{NAMESPACE}/deployments", headers={"Accept": TABLE}
    ).json()
    per_stack: dict[str, int] = {}
    for row in deployments.get("rows") or []:
        stack = str(row["cells"][0]).rsplit("-", 1)[0]
        per_stack[stack] = per_stack.get(stack, 0) + 1
    stacks = http.get(
        f"{server}/apis/retention.dev/v1alpha1/namespaces/{NAMESPACE}/retentionstacks",
        headers={"Accept": TABLE},
    ).json()
    columns = [c["name"] for c in stacks.get("columnDefinitions") or []]
    ready_column = columns.index("Ready") if "Ready" in columns else 1
    ready = sum(1 for row in stacks.get("rows") or [] if str(row["cells"][ready_column]) == "True")
    return sum(1 for n in per_stack.values() if n >= 3), ready


def _quiet(
    read: Callable[[], tuple[float, ...]], *, ready: Callable[[], bool], timeout: float
) -> float | None:
    """Seconds from now until ``read()`` last moved, once it stood still QUIET_SECONDS and
    ``ready()``; None if that did not happen within ``timeout``."""
    began = time.monotonic()
    last, moved = read(), time.monotonic()
    while time.monotonic() - began < timeout:
        time.sleep(1)
        now = read()
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved >= QUIET_SECONDS and ready():
            return round(moved - began, 1)
    return None


def _source_env(source: Path | None) -> dict[str, str]:
    if source is None:
        return {}
    paths = [str(source.resolve() / part) for part in ("operator", "contract")]
    return {"PYTHONPATH": os.pathsep.join(paths)}


def _metrics(op: OperatorProcess) -> Metrics:
    # The operator answers /metrics from a thread: under load that can take
    # seconds, so wait longer than the harness does, and once more on a timeout.
    url = f"http://127.0.0.1:{op.metrics_port}/metrics"
    for attempt in range(3):
        try:
            return Metrics.parse(httpx.get(url, timeout=30).text)
        except httpx.TimeoutException:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _pid(op: OperatorProcess) -> int:
    assert op.proc is not None
    return op.proc.pid


def _db_secret(db: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": NAMESPACE},
        "stringData": {"password": db.password},
    }


def _apply_stacks(cp: ControlPlane, base: Path, count: int, db: Any, redis_url: str) -> float:
    items = [_db_secret(db)] + [
        _stack(f"s{i:04d}", NAMESPACE, db=db, redis_url=redis_url) for i in range(count)
    ]
    (base / "stacks.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items})
    )
    began = time.monotonic()
    apply_all(cp, items)
    return began


def _at_rest(
    op: OperatorProcess,
    http: httpx.Client,
    cp: ControlPlane,
    seconds: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Figures over ``seconds`` of rest (py-spy attached throughout when ``profile``)."""
    pid = _pid(op)
    spy = Profile(pid, profile) if profile else None
    cpu0, m0, apf0, t0 = (
        cpu_seconds(pid),
        _metrics(op),
        identity.dispatched(http, cp.server),
        time.monotonic(),
    )
    time.sleep(seconds)
    cpu1, m1, apf1, t1 = (
        cpu_seconds(pid),
        _metrics(op),
        identity.dispatched(http, cp.server),
        time.monotonic(),
    )
    minutes = (t1 - t0) / 60
    rest: dict[str, Any] = {
        "seconds": round(t1 - t0, 1),
        "cpu_s_per_min": round((cpu1 - cpu0) / minutes, 2),
        "cpu_percent_of_a_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
        "apf_requests_per_min": round((apf1 - apf0) / minutes, 1),
        "own_requests_per_min": round((m1.requests - m0.requests) / minutes, 1),
        "mutating_requests": int(m1.mutating - m0.mutating),
        **tick_figures(m0, m1),
        # A full collection walks every tracked object (the cache's, kopf's): count them.
        "gc_collections_per_min": {
            gen: round((m1.gc_collections.get(gen, 0.0) - count) / minutes, 1)
            for gen, count in sorted(m0.gc_collections.items())
        },
        "load": load(),
    }
    if spy is not None:
        rest["profile"] = spy.stop()
    return rest


def run(
    count: int,
    timeout: float,
    *,
    idle_seconds: float,
    profile: Path | None,
    operator_source: Path | None = None,
    without_operator: bool = False,
) -> dict[str, Any]:
    """Run the benchmark once and return its figures.

    ``operator_source``: a checkout (``git archive`` of a revision) whose
    ``operator/`` and ``contract/`` packages run instead of this one's, to
    measure an earlier version with the same harness. ``without_operator``:
    no operator; the same children applied directly (:mod:`.floor`).
    """
    base = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    # Four pods a stack and 110 pods a KWOK node: give every stack room to run.
    cp = start_control_plane(base / "cluster", nodes=max(3, count * 4 // 100 + 2))
    db = redis = op = None
    result: dict[str, Any] = {"stacks": count}
    try:
        cp.kubectl(
            "apply",
            "--server-side",
            "-f",
            str(REPO_ROOT / "crds/retention.dev_retentionstacks.yaml"),
        )
        # Right after the apply the CRD may have no conditions yet, which kubectl wait refuses.
        for _ in range(30):
            crd = "crd/retentionstacks.retention.dev"
            if cp.kubectl_run("wait", "--for=condition=Established", crd).returncode == 0:
                break
            time.sleep(1)
        # TLS, as a hosted database serves it: a stack's default sslmode is require.
        tls = create_server_tls(base / "postgres-tls", hosts=["127.0.0.1"], ca_name="bench-db-ca")
        db = start_postgres(base_dir=base / "postgres", tls=tls)
        redis = start_redis(base_dir=base / "redis")
        if without_operator:
            cp.kubectl("create", "namespace", NAMESPACE)
            result["load_before_apply"] = load()
            result["without_operator"] = run_floor(
                cp,
                identity.admin_client(cp),
                base=base,
                namespace=NAMESPACE,
                stacks=[
                    _stack(f"s{i:04d}", NAMESPACE, db=db, redis_url=redis.url) for i in range(count)
                ],
                extra=[_db_secret(db)],
                timeout=timeout,
                poll=POLL_SECONDS,
            )
            result["load_at_ready"] = load()
            return result
        identity.install_chart(cp)
        identity.apply_json(cp, identity.flow_schema())
        op = OperatorProcess(
            kubeconfig=identity.operator_kubeconfig(cp, base / "operator.kubeconfig"),
            log_dir=base / "operator",
            env={
                **PRODUCTION_ENV,
                "RETENTION_OPERATOR_NAMESPACE": identity.NAMESPACE,
                **_source_env(operator_source),
            },
        )
        op.start()
        cp.kubectl("create", "namespace", NAMESPACE)
        http = identity.admin_client(cp)
        result["load_before_apply"] = load()
        spy = Profile(_pid(op), profile) if profile else None
        cpu_before = cpu_seconds(_pid(op))
        began = _apply_stacks(cp, base, count, db, redis.url)
        result["apply_s"] = round(time.monotonic() - began, 1)
        children_at = ready_at = None
        progress: list[tuple[float, int, int]] = []
        while time.monotonic() - began < timeout:
            try:
                with_children, ready = _counts(http, cp.server)
            except httpx.HTTPError:
                # A busy API server may time out a list; the next poll asks again.
                time.sleep(POLL_SECONDS)
                continue
            now = time.monotonic() - began
            if not progress or now - progress[-1][0] >= 15:
                progress.append((round(now, 1), with_children, ready))
            if children_at is None and with_children >= count:
                children_at = now
            if ready >= count:
                ready_at = now
                break
            # Each poll lists every stack: not more often, so that the benchmark
            # itself is not a load on the API server it measures.
            time.sleep(POLL_SECONDS)
        busy = time.monotonic() - began
        result |= {
            "all_children_exist_s": None if children_at is None else round(children_at, 1),
            "all_ready_s": None if ready_at is None else round(ready_at, 1),
            # The operator's share of a core while it created: near 100 % means it is the limit.
            "cpu_percent_while_creating": round(
                100 * (cpu_seconds(_pid(op)) - cpu_before) / busy, 1
            ),
            "progress_s_children_ready": progress,
            "load_at_ready": load(),
        }
        if spy is not None:
            result["profile_create"] = spy.stop()
        if ready_at is None:
            with contextlib.suppress(httpx.HTTPError):
                result["stacks_ready_at_timeout"] = _counts(http, cp.server)[1]
        result["settle_s"] = _quiet(
            lambda: (_metrics(op).requests,), ready=lambda: True, timeout=300
        )
        result["mutating_requests_to_create"] = int(_metrics(op).mutating)
        result["at_rest"] = _at_rest(
            op, http, cp, idle_seconds, profile.with_suffix(".rest.txt") if profile else None
        )
        result["peak_rss_mib"] = round(peak_rss_mib(_pid(op)), 1)
        result["restart"] = _restart(op, http, cp, count, profile)
        result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        result["operator_source"] = str(operator_source or REPO_ROOT)
        result["log"] = str(base / "operator")
        return result
    finally:
        for server in (op, redis, db):
            if server is not None:
                server.stop()
        cp.stop()


def _restart(
    op: OperatorProcess, http: httpx.Client, cp: ControlPlane, count: int, profile: Path | None
) -> dict[str, Any]:
    """Restart over the Ready stacks: seconds to quiet, writes meanwhile, peak RSS."""
    op.stop()
    began = time.monotonic()
    op.start()
    started = time.monotonic() - began
    spy = Profile(_pid(op), profile.with_suffix(".restart.txt")) if profile else None

    def read() -> tuple[float, ...]:
        return (_metrics(op).requests, float(identity.dispatched(http, cp.server)))

    quiet = _quiet(read, ready=lambda: _metrics(op).reconciles >= count, timeout=600)
    out: dict[str, Any] = {
        "process_up_s": round(started, 1),
        "quiet_s": None if quiet is None else round(started + quiet, 1),
        "reconciles": int(_metrics(op).reconciles),
        "mutating_requests": int(_metrics(op).mutating),
        "own_requests": int(_metrics(op).requests),
        "peak_rss_mib": round(peak_rss_mib(_pid(op)), 1),
        "load": load(),
    }
    if spy is not None:
        out["profile"] = spy.stop()
    return out


def _ratio(ours: float | None, floor: float | None) -> float | None:
    if ours is None or not floor:
        return None
    return round(ours / floor, 2)


def compare(operator: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """Both runs side by side, and the operator's seconds over the floor's."""
    base = floor["without_operator"]
    return {
        "stacks": operator["stacks"],
        "floor": floor,
        "operator": operator,
        "ratio": {
            "all_children_exist": _ratio(
                operator.get("all_children_exist_s"), base["all_children_exist_s"]
            ),
            # The floor's pods ready against the operator's stacks Ready (which also
            # needs every pod ready, and its Redis and database to answer).
            "all_ready": _ratio(operator.get("all_ready_s"), base["all_deployments_ready_s"]),
        },
    }


def markdown(compared: dict[str, Any]) -> str:
    """The README's table rows for one comparison."""
    result, base, ratio = compared["operator"], compared["floor"], compared["ratio"]
    rest, restart, floor = result["at_rest"], result["restart"], base["without_operator"]
    return "\n".join(
        [
            "| stacks | all children exist: floor, operator (ratio) "
            "| all Ready: floor, operator (ratio) | peak RSS | idle CPU "
            "| requests/min at rest | mutating at rest | tick (mean) | quiet after restart "
            "| writes on restart |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {result['stacks']} | {floor['all_children_exist_s']} s, "
            f"{result['all_children_exist_s']} s ({ratio['all_children_exist']}) "
            f"| {floor['all_deployments_ready_s']} s, {result['all_ready_s']} s "
            f"({ratio['all_ready']}) "
            f"| {result['peak_rss_mib']} MiB | {rest['cpu_percent_of_a_core']} % "
            f"({rest['cpu_s_per_min']} s/min) | {rest['apf_requests_per_min']} "
            f"| {rest['mutating_requests']} | {rest['tick_mean_s']} s "
            f"| {restart['quiet_s']} s | {restart['mutating_requests']} |",
            "",
            f"Load averages (1, 5, 15 min): floor before its apply {base['load_before_apply']}, "
            f"at its Ready {base['load_at_ready']}; "
            f"operator before the apply {result['load_before_apply']}, "
            f"at all Ready {result['load_at_ready']}, at rest {rest['load']}, "
            f"after the restart {restart['load']}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator", description=__doc__)
    parser.add_argument("--stacks", type=int, default=100, help="how many stacks to create")
    parser.add_argument(
        "--timeout", type=float, default=600, help="give up waiting for Ready after this many s"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=60, help="length of the at-rest measurement"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy folded stacks of the operator while it creates (and, .restart.txt, resumes)",
    )
    parser.add_argument(
        "--operator-source",
        type=Path,
        help="run the operator/ and contract/ packages of this checkout (an earlier revision)",
    )
    parser.add_argument(
        "--without-operator",
        action="store_true",
        help="only the floor: the same children, rendered by the builders, applied directly",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="only the operator (no baseline, no ratio)"
    )
    parser.add_argument("--markdown", action="store_true", help="also print README table rows")
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args(argv)

    def side(without_operator: bool) -> dict[str, Any]:
        return run(
            args.stacks,
            args.timeout,
            idle_seconds=args.idle_seconds,
            profile=args.profile,
            operator_source=args.operator_source,
            without_operator=without_operator,
        )

    if args.without_operator:
        alone = side(True)
        print(json.dumps(alone))
        return 0 if alone["without_operator"]["all_deployments_ready_s"] is not None else 1
    # One control plane at a time: the floor's is stopped before the operator's starts.
    floor = None if args.no_floor else side(True)
    result = side(False)
    if floor is None:
        print(json.dumps(result))
    else:
        compared = compare(result, floor)
        print(json.dumps(compared))
        if args.markdown:
            print(markdown(compared))
    return 0 if result["all_ready_s"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
