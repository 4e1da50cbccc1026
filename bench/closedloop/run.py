"""One arm's run: Locust, the job enqueuer and the 1 s sampler, then the jobs' rows.

Run second 0 is a wall-clock second a little after the start, the same for the
three parts:

* Locust (a subprocess, ``bench/closedloop/locustfile.py``) offers the trace's
  request rate to the API's Service and stops itself at the trace's end;
* the enqueuer adds the trace's jobs to the stack's stream from the host on the
  trace's schedule (the workloads' own entry format), every 0.25 s what became
  due; independent of the API, so the workers see the same arrivals in every arm;
* the sampler reads both Deployments every second (``spec.replicas`` and
  ``status.replicas``).

Every loop ends at the trace's end; then the workers get at most
:data:`DRAIN_S` to begin the jobs still queued, and the jobs' own timestamps
are read from PostgreSQL. Locust's own run is bounded by a timeout too.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.autoscaling.trace import Trace
from bench.closedloop import arms, figures
from bench.closedloop.plant import Cluster, Kube, Stack, fresh_stack, say
from bench.closedloop.schedule import Load, rate_at, steps
from retention_workloads.jobs import encode_entry

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
LEAD_S = 5.0
"""Seconds from the start of Locust to run second 0 (its start-up)."""
DRAIN_S = 60.0
TIMEOUT_S = 10.0
"""Client timeout of one request."""
ENQUEUE_EVERY_S = 0.25


@dataclass
class ArmRun:
    """What one arm's run saw."""

    requests: list[figures.Request] = field(default_factory=list)
    samples: list[figures.Sample] = field(default_factory=list)
    jobs: list[figures.Job] = field(default_factory=list)
    operator_scale_events: int = 0


def _locust(
    *,
    url: str,
    trace_path: Path,
    load: Load,
    start: float,
    user_rps: float,
    out: Path,
    log: Path,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLOSEDLOOP_TRACE": str(trace_path),
        "CLOSEDLOOP_COMPRESS": str(load.compress),
        "CLOSEDLOOP_API_SCALE": str(load.api_scale),
        "CLOSEDLOOP_START": str(start),
        "CLOSEDLOOP_USER_RPS": str(user_rps),
        "CLOSEDLOOP_TIMEOUT_S": str(TIMEOUT_S),
        "CLOSEDLOOP_REQUESTS": str(out),
        **(extra_env or {}),
    }
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        url,
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--skip-log-setup",
    ]
    with log.open("ab") as handle:
        return subprocess.Popen(
            argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _read_requests(path: Path) -> list[figures.Request]:
    if not path.exists():
        raise RuntimeError(f"Locust wrote no requests file {path}: see its log beside it")
    with path.open(newline="") as handle:
        return [
            figures.Request(float(r["at"]), float(r["latency_ms"]), r["outcome"])
            for r in csv.DictReader(handle)
        ]


def _enqueue(
    stack: Stack,
    trace: Trace,
    *,
    start: float,
    task: str,
    stop: threading.Event,
    enqueued: dict[str, float],
) -> None:
    """Add the jobs that became due since the last call, every ENQUEUE_EVERY_S, to the end."""
    client = stack.redis.client(timeout=5.0)
    sent = 0
    try:
        while not stop.is_set():
            t = time.time() - start
            if t >= trace.jobs_per_s.end:
                return
            due = int(trace.jobs_per_s.integral(0.0, max(t, 0.0)))
            if due > sent:
                pipe = client.pipeline(transaction=False)
                now_ms = int(time.time() * 1000)
                for _ in range(due - sent):
                    job_id = uuid.uuid4()
                    fields = encode_entry(
                        job_id=job_id, task=task, payload_json="{}", enqueued_ms=now_ms, attempts=0
                    )
                    pipe.xadd(stack.stream, fields)  # type: ignore[arg-type]
                    enqueued[str(job_id)] = now_ms / 1000 - start
                pipe.execute()
                sent = due
            stop.wait(ENQUEUE_EVERY_S)
    finally:
        client.close()


def _deployment_replicas(kube: Kube, namespace: str) -> dict[str, tuple[int, int]]:
    body = kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments")
    return {
        item["metadata"]["name"]: (
            int(item["spec"].get("replicas") or 0),
            int(item.get("status", {}).get("replicas") or 0),
        )
        for item in body.get("items", [])
    }


def _sample(
    kube: Kube,
    stack: Stack,
    *,
    start: float,
    until: float,
    stop: threading.Event,
    samples: list[figures.Sample],
) -> None:
    """Sample both Deployments every second from now until run second ``until``."""
    api, workers = f"{arms.STACK}-api", f"{arms.STACK}-workers"
    while not stop.is_set() and time.time() - start < until:
        at = time.time() - start
        try:
            seen = _deployment_replicas(kube, stack.namespace)
        except Exception as error:  # a missed sample is not the end of the run
            say(f"sample at {at:.0f} s failed: {error}")
        else:
            a, w = seen.get(api, (0, 0)), seen.get(workers, (0, 0))
            samples.append(figures.Sample(round(at, 2), a[0], a[1], w[0], w[1]))
        stop.wait(max(1.0 - (time.time() - start - at), 0.05))


def _job_rows(stack: Stack, task: str, start: float) -> dict[str, float | None]:
    sql = (
        "SELECT id, extract(epoch FROM started_at) FROM retention_jobs "  # noqa: S608
        f"WHERE task = '{task}'"
    )
    out = stack.postgres.psql_super(sql, dbname=stack.postgres.dbname)
    rows: dict[str, float | None] = {}
    for line in out.splitlines():
        job_id, _, began = line.partition("|")
        rows[job_id] = float(began) - start if began else None
    return rows


def _backlog_drained(stack: Stack) -> bool:
    with stack.redis.client() as client:
        groups = client.xinfo_groups(stack.stream)
    return all(int(g.get("lag") or 0) == 0 and int(g.get("pending") or 0) == 0 for g in groups)


def _operator_scale_events(cluster: Cluster, namespace: str) -> int:
    out = cluster.cp.kubectl("get", "events", "-n", namespace, "-o", "json", check=False)
    items: list[dict[str, Any]] = json.loads(out).get("items", []) if out else []
    return sum(
        1
        for e in items
        if e.get("reason") in ("ScaledUp", "ScaledDown")
        and e.get("involvedObject", {}).get("kind") == "RetentionStack"
    )


def run_arm(
    cluster: Cluster,
    stack: Stack,
    *,
    trace: Trace,
    trace_path: Path,
    load: Load,
    user_rps: float,
    out_dir: Path,
) -> ArmRun:
    """Replay the (compressed) trace against ``stack``; return what was seen."""
    out_dir.mkdir(parents=True, exist_ok=True)
    task = f"cl-{stack.arm}"
    duration = trace.api_rps.end
    start = time.time() + LEAD_S
    result = ArmRun()
    enqueued: dict[str, float] = {}
    stop = threading.Event()
    kube = Kube(cluster.cp)
    requests_csv = out_dir / "requests.csv"
    locust = _locust(
        url=stack.api_url,
        trace_path=trace_path,
        load=load,
        start=start,
        user_rps=user_rps,
        out=requests_csv,
        log=out_dir / "locust.log",
    )
    threads = [
        threading.Thread(
            target=_enqueue,
            args=(stack, trace),
            kwargs={"start": start, "task": task, "stop": stop, "enqueued": enqueued},
            daemon=True,
        ),
        threading.Thread(
            target=_sample,
            args=(kube, stack),
            kwargs={
                "start": start,
                "until": duration + DRAIN_S,
                "stop": stop,
                "samples": result.samples,
            },
            daemon=True,
        ),
    ]
    for thread in threads:
        thread.start()
    try:
        say(f"{stack.arm}: load for {duration:.0f} s from {time.strftime('%H:%M:%S')}")
        locust.wait(timeout=LEAD_S + duration + 120)
        threads[0].join(timeout=30)
        # Jobs still queued get a bounded time to begin; the sampler keeps going meanwhile.
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and not _backlog_drained(stack):
            time.sleep(2)
    finally:
        stop.set()
        if locust.poll() is None:
            locust.terminate()
            locust.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=30)
        kube.close()
    result.requests = _read_requests(requests_csv)
    rows = _job_rows(stack, task, start)
    result.jobs = [figures.Job(at, rows.get(job_id)) for job_id, at in enqueued.items()]
    result.operator_scale_events = _operator_scale_events(cluster, stack.namespace)
    # Keep only what the figures judge: the run's own seconds.
    result.samples = [s for s in result.samples if s.at <= duration]
    _write_timeline(out_dir / "timeline.csv", result, duration=duration, trace=trace)
    return result


def _write_timeline(path: Path, run: ArmRun, *, duration: float, trace: Trace) -> None:
    """Per 5 s window: offered rate, client p95, replicas (for the plots and a reader)."""
    windows = figures.windows(run.requests, duration=duration)
    waits = dict(figures.queue_waits(run.jobs, duration=duration))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            (
                "t",
                "offered_rps",
                "requests",
                "p95_ms",
                "api_wanted",
                "api_pods",
                "workers_wanted",
                "worker_pods",
                "max_queue_wait_s",
                "jobs_per_s",
            )
        )
        for at, q, n in windows:
            inside = [s for s in run.samples if at <= s.at < at + figures.WINDOW_S]
            last = inside[-1] if inside else None
            writer.writerow(
                (
                    at,
                    round(rate_at(trace.api_rps, at), 1),
                    n,
                    round(q, 1),
                    last.api_wanted if last else "",
                    last.api_pods if last else "",
                    last.workers_wanted if last else "",
                    last.worker_pods if last else "",
                    round(waits.get(at, 0.0), 1),
                    round(rate_at(trace.jobs_per_s, at), 2),
                )
            )


@dataclass(frozen=True, slots=True)
class Capacity:
    """One API pod's measured capacity: requests/s served back to back, and their p95."""

    rps: float
    p95_ms: float
    users: int
    seconds: float


def measure_capacity(
    stack: Stack, *, trace_path: Path, users: int, seconds: float, out_dir: Path
) -> Capacity:
    """Saturate ``stack``'s API (one pod) with ``users`` back-to-back Locust users for
    ``seconds``; the rate served after the first 5 s is the pod's capacity."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.time() + LEAD_S
    out = out_dir / "requests.csv"
    locust = _locust(
        url=stack.api_url,
        trace_path=trace_path,
        load=Load(),
        start=start,
        user_rps=1.0,
        out=out,
        log=out_dir / "locust.log",
        extra_env={"CLOSEDLOOP_SATURATE": str(users), "CLOSEDLOOP_SECONDS": str(seconds)},
    )
    try:
        locust.wait(timeout=LEAD_S + seconds + 60)
    finally:
        if locust.poll() is None:
            locust.terminate()
            locust.wait(timeout=30)
    settled = [r for r in _read_requests(out) if 5.0 <= r.at < seconds and r.outcome == "ok"]
    if not settled:
        raise RuntimeError(f"no request succeeded while measuring capacity; see {out_dir}")
    rps = len(settled) / (seconds - 5.0)
    p95 = figures.p95([r.latency_ms for r in settled])
    return Capacity(rps=round(rps, 1), p95_ms=round(p95, 1), users=users, seconds=seconds)


def one_arm(
    shared: Cluster,
    plant: arms.Plant,
    *,
    arm: str,
    trace: Trace,
    trace_path: Path,
    load: Load,
    user_rps: float,
    api_rps_per_pod: float,
    run_dir: Path,
) -> dict[str, Any]:
    """One arm on a fresh stack: its autoscalers, the load, its figures; the stack is
    stopped after. ``api_rps_per_pod`` (one pod's measured capacity) sets KEDA's target."""
    stack = fresh_stack(shared, plant, arm=arm, run_dir=run_dir)
    try:
        docs: list[dict[str, Any]] = []
        if arm == "hpa":
            docs = list(arms.hpas(plant, namespace=stack.namespace))
        elif arm == "keda":
            docs = list(
                arms.scaled_objects(
                    plant,
                    namespace=stack.namespace,
                    stream=stack.stream,
                    redis_address=f"{stack.redis.host}:{stack.redis.port}",
                    prometheus_url=shared.prometheus.url,
                    api_rps_per_pod=api_rps_per_pod,
                )
            )
        if docs:
            path = shared.cp.run_dir / f"closedloop-{arm}-autoscalers.yaml"
            path.write_text(yaml.safe_dump_all(docs))
            shared.cp.kubectl("apply", "-f", str(path))
        seen = run_arm(
            shared,
            stack,
            trace=trace,
            trace_path=trace_path,
            load=load,
            user_rps=user_rps,
            out_dir=run_dir / arm,
        )
    finally:
        stack.stop(shared)
    out = figures.figures(
        requests=seen.requests,
        samples=seen.samples,
        jobs=seen.jobs,
        duration=trace.api_rps.end,
        target_p95_ms=plant.target_p95_ms,
        target_queue_wait_s=plant.target_queue_wait_s,
        load_steps=steps(trace.api_rps),
    )
    out["operator_scale_events"] = seen.operator_scale_events
    return out
