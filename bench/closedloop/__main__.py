"""``python -m bench.closedloop --trace T [--json]``: the three arms on real pods, one run.

One cluster with a real node (:mod:`bench.closedloop.plant`); first one API pod
is saturated to measure its capacity (which sets KEDA's target as a careful user
sets it, and the simulator's plant); then each arm (:mod:`bench.closedloop.arms`)
gets a fresh identical stack and the same compressed trace
(:mod:`bench.closedloop.run`), one after another. Prints a header (the command,
the versions of KEDA and Kubernetes, the measured capacity), the figures per arm,
the ratios ours/KEDA and ours/HPA, and the same trace through ``bench.autoscaling``
with the plant set to the measured capacity; with ``--json`` one JSON object keyed
by arm (plus ``run``, ``judgement`` and ``simulator``). PNG plots per arm go to
``--out``. Exit status 2 on a bad trace or argument, naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench.autoscaling.controllers import CONTROLLERS
from bench.autoscaling.judge import judge
from bench.autoscaling.plant import PlantConfig
from bench.autoscaling.simulate import simulate
from bench.autoscaling.trace import Trace, TraceError, read_trace
from bench.closedloop import arms, plots
from bench.closedloop.plant import Cluster, cluster, fresh_stack, say
from bench.closedloop.run import Capacity, measure_capacity, one_arm
from bench.closedloop.schedule import Load, compressed, steps

REPO = Path(__file__).resolve().parents[2]
MAX_ARM_S = 15 * 60
CAPACITY_SECONDS = 30.0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.closedloop",
        description="The operator's autoscaler against real KEDA and the real HPA, on real "
        "pods of the real node, under a trace replayed by Locust.",
    )
    parser.add_argument("--trace", type=Path, required=True, help="CSV: t,api_rps,jobs_per_s")
    parser.add_argument("--compress", type=float, default=4.0, help="trace seconds per second")
    parser.add_argument(
        "--api-peak-pods",
        type=float,
        default=6.0,
        help="the trace's peak request rate in API pods' measured capacity (sets --api-scale)",
    )
    parser.add_argument(
        "--worker-peak-pods",
        type=float,
        default=4.0,
        help="the trace's peak job rate in workers' throughput (sets --jobs-scale)",
    )
    parser.add_argument("--api-scale", type=float, help="run req/s per trace req/s instead")
    parser.add_argument("--jobs-scale", type=float, help="run jobs/s per trace job/s instead")
    parser.add_argument("--user-rps", type=float, default=1.0, help="requests/s of one user")
    parser.add_argument("--arms", default=",".join(arms.ARMS), help="comma-separated arms")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, default=REPO / ".run" / "closedloop", help="run dir")
    return parser.parse_args(argv)


def _plant_for_simulator(plant: arms.Plant, capacity: Capacity) -> PlantConfig:
    """``bench.autoscaling``'s plant with the measured API capacity and the workers' own."""
    base = PlantConfig()
    return dataclasses.replace(
        base,
        api_service_time_ms=plant.api_concurrency * 1000 / capacity.rps - base.db_query_ms,
        api_concurrency=plant.api_concurrency,
        api_request_timeout_s=10.0,
        api_min_replicas=plant.api_min,
        api_max_replicas=plant.api_max,
        worker_job_time_ms=1000 / plant.worker_jobs_per_s - base.db_job_query_ms,
        worker_min_replicas=plant.workers_min,
        worker_max_replicas=plant.workers_max,
        target_p95_ms=float(plant.target_p95_ms),
        target_queue_wait_s=float(plant.target_queue_wait_s),
        target_drain_s=float(plant.target_drain_s),
    )


def _simulate(trace: Trace, config: PlantConfig, names: list[str]) -> dict[str, Any]:
    return {n: simulate(trace, config, CONTROLLERS[n](config)).score.as_json() for n in names}


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs > 0 else "-"


def _table(out: dict[str, Any]) -> str:
    run = out["run"]
    names = [a for a in arms.ARMS if a in out]
    lines = [
        f"# {run['command']}",
        f"# KEDA {run['keda_version'] or 'not run'}, Kubernetes {run['kubernetes_version']}, "
        f"trace {run['trace']} compressed {run['compress']}x ({run['seconds']:.0f} s per arm)",
        f"# one API pod: {run['capacity']['rps']} req/s back to back "
        f"(p95 {run['capacity']['p95_ms']} ms, {run['capacity']['users']} users); "
        f"KEDA targets {run['keda_targets']}",
        "",
    ]
    keys = [
        "api_slo_violation_s",
        "api_replica_s",
        "queue_wait_violation_s",
        "worker_replica_s",
        "scale_direction_changes",
        "failed_requests",
        "timed_out_requests",
        "requests",
        "max_api_p95_ms",
        "max_queue_wait_s",
        "api_max_replicas",
        "worker_max_replicas",
        "api_reaction_s",
        "worker_reaction_s",
        "operator_scale_events",
    ]
    lines.append("| figure | " + " | ".join(names) + " |")
    lines.append("|---|" + "---:|" * len(names))
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(str(out[n].get(key, "")) for n in names) + " |")
    lines += [
        "",
        "| ours / baseline | API violation s | API replica-s | queue-wait violation s "
        "| worker replica-s | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    ours = out.get(arms.ARMS[0])
    for verdicts in _by_baseline(out.get("judgement", [])).items():
        baseline, pair = verdicts
        if ours is None:
            break
        theirs = out[baseline]
        met = all(v["met"] for v in pair)
        lines.append(
            f"| ours / {baseline} "
            f"| {_ratio(ours['api_slo_violation_s'], theirs['api_slo_violation_s'])} "
            f"({ours['api_slo_violation_s']:.0f} / {theirs['api_slo_violation_s']:.0f}) "
            f"| {_ratio(ours['api_replica_s'], theirs['api_replica_s'])} "
            f"| {_ratio(ours['queue_wait_violation_s'], theirs['queue_wait_violation_s'])} "
            f"({ours['queue_wait_violation_s']:.0f} / {theirs['queue_wait_violation_s']:.0f}) "
            f"| {_ratio(ours['worker_replica_s'], theirs['worker_replica_s'])} "
            f"| {'met' if met else 'missed'} |"
        )
    sim = out.get("simulator", {})
    if sim:
        lines += [
            "",
            "Simulator (bench.autoscaling, same compressed trace, plant at the "
            "measured capacity; its hpa scales on requests/s and lag, not CPU):",
            "",
            "| figure | " + " | ".join(f"{n} real / sim" for n in sim) + " |",
            "|---|" + "---:|" * len(sim),
        ]
        for key in (
            "api_slo_violation_s",
            "api_replica_s",
            "queue_wait_violation_s",
            "worker_replica_s",
            "scale_direction_changes",
        ):
            cells = [f"{out.get(n, {}).get(key, '-')} / {sim[n][key]}" for n in sim]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    if out["run"].get("plots"):
        lines += ["", "Plots: " + ", ".join(out["run"]["plots"])]
    return "\n".join(lines)


def _by_baseline(judgement: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for verdict in judgement:
        grouped.setdefault(verdict["baseline"], []).append(verdict)
    return grouped


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _arguments(argv)
    args.command = "python -m bench.closedloop " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    chosen = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in arms.ARMS]
    if unknown or not chosen:
        print(
            f"error: --arms: unknown {unknown or chosen}; choose from {arms.ARMS}", file=sys.stderr
        )
        return 2
    try:
        raw = read_trace(args.trace)
        trace = compressed(raw, Load(compress=args.compress))
    except (OSError, ValueError, TraceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    duration = trace.api_rps.end
    if duration > MAX_ARM_S:
        print(
            f"error: {duration:.0f} s per arm is over {MAX_ARM_S} s: compress more", file=sys.stderr
        )
        return 2
    plant = arms.Plant()
    run_dir = args.out / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    shared = cluster(run_dir, keda="keda" in chosen, hpa="hpa" in chosen)
    try:
        out = _run(shared, plant, args=args, chosen=chosen, raw=raw, run_dir=run_dir)
    finally:
        shared.stop()
    (run_dir / "result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2) if args.json else _table(out))
    return 0


def _run(
    shared: Cluster,
    plant: arms.Plant,
    *,
    args: argparse.Namespace,
    chosen: list[str],
    raw: Trace,
    run_dir: Path,
) -> dict[str, Any]:
    one_pod = dataclasses.replace(plant, api_min=1, api_max=1)
    probe = fresh_stack(shared, one_pod, arm="capacity", run_dir=run_dir)
    try:
        capacity = measure_capacity(
            probe,
            trace_path=args.trace,
            users=2 * plant.api_concurrency,
            seconds=CAPACITY_SECONDS,
            out_dir=run_dir / "capacity",
        )
    finally:
        probe.stop(shared)
    say(f"one API pod serves {capacity.rps} req/s back to back (p95 {capacity.p95_ms} ms)")
    rps_target, lag_target = arms.keda_targets(plant, api_rps_per_pod=capacity.rps)
    # The load fits the plant as measured: the trace's peak is so many pods' worth.
    load = Load(
        compress=args.compress,
        api_scale=args.api_scale or args.api_peak_pods * capacity.rps / max(raw.api_rps.values),
        jobs_scale=args.jobs_scale
        or args.worker_peak_pods * plant.worker_jobs_per_s / max(raw.jobs_per_s.values),
    )
    trace = compressed(raw, load)
    load_steps = steps(trace.api_rps)
    out: dict[str, Any] = {}
    for arm in chosen:
        out[arm] = one_arm(
            shared,
            plant,
            arm=arm,
            trace=trace,
            trace_path=args.trace,
            load=load,
            user_rps=args.user_rps,
            api_rps_per_pod=capacity.rps,
            run_dir=run_dir,
        )
        say(f"{arm}: {json.dumps(out[arm])}")
    names = [n for n in chosen if n in CONTROLLERS]
    out["judgement"] = (
        [v.as_json() for v in judge({n: out[n] for n in chosen})] if "retention" in out else []
    )
    out["simulator"] = _simulate(trace, _plant_for_simulator(plant, capacity), names)
    pngs = [str(plots.plot(run_dir / arm / "timeline.csv", arm=arm, plant=plant)) for arm in chosen]
    out["run"] = {
        "command": args.command,
        "keda_version": shared.keda_version,
        "kubernetes_version": shared.kubernetes_version,
        "trace": str(args.trace),
        "compress": load.compress,
        "api_scale": load.api_scale,
        "jobs_scale": load.jobs_scale,
        "seconds": trace.api_rps.end,
        "load_steps_s": load_steps,
        "capacity": dataclasses.asdict(capacity),
        "keda_targets": {"api_rps_per_pod": rps_target, "worker_lag": lag_target},
        "plant": dataclasses.asdict(plant),
        "plots": pngs,
        "run_dir": str(run_dir),
    }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
