"""The command: ``python -m bench.autoscaling --trace FILE [--policy P] [--plant JSON]
[--timeline CSV] [--json [--judge]]``.

Runs each chosen policy over the trace against the same plant and prints, per
policy, its figures: as one JSON object keyed by policy with ``--json`` (``--judge``
adds a ``"judgement"`` key: ours against every baseline), else as a table followed
by the judgement. Exit status 2 on a bad trace or plant file, naming what is wrong.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from bench.autoscaling.controllers import CONTROLLERS
from bench.autoscaling.judge import COST_RATIO, OURS, VIOLATION_FLOOR_S, VIOLATION_RATIO, judge
from bench.autoscaling.plant import PlantConfig
from bench.autoscaling.simulate import TIMELINE_COLUMNS, Run, simulate
from bench.autoscaling.trace import TraceError, read_trace


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.autoscaling",
        description="Simulate retention's autoscaling policy against the HPA and KEDA "
        "(each as a careful user sets it up) on a load trace.",
    )
    parser.add_argument("--trace", type=Path, required=True, help="CSV: t,api_rps,jobs_per_s")
    parser.add_argument(
        "--policy", choices=[*CONTROLLERS, "all"], default="all", help="policy to run"
    )
    parser.add_argument(
        "--plant", type=Path, help="JSON object overriding plant settings (README: The plant)"
    )
    parser.add_argument("--timeline", type=Path, help="write a per-step CSV timeline here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--judge", action="store_true", help="with --json: add the judgement against baselines"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _arguments(argv)
    try:
        trace = read_trace(args.trace)
        plant = PlantConfig.from_file(args.plant) if args.plant else PlantConfig()
    except (OSError, ValueError, TraceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = list(CONTROLLERS) if args.policy == "all" else [args.policy]
    runs: dict[str, Run] = {}
    for name in names:
        runs[name] = simulate(trace, plant, CONTROLLERS[name](plant), timeline=bool(args.timeline))
    if args.timeline:
        _write_timeline(args.timeline, runs)
    figures = {name: run.score.as_json() for name, run in runs.items()}
    if args.json:
        out: dict[str, object] = {}
        for name, run in runs.items():
            days = run.score.by_day()
            out[name] = {**figures[name], "by_day": days} if len(days) > 1 else figures[name]
        if args.judge and OURS in figures:
            out["judgement"] = [verdict.as_json() for verdict in judge(figures)]
        print(json.dumps(out, indent=2))
    else:
        _print_table(figures)
    return 0


def _write_timeline(path: Path, runs: dict[str, Run]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TIMELINE_COLUMNS)
        for run in runs.values():
            writer.writerows(run.timeline)


def _print_table(figures: dict[str, dict[str, float | int]]) -> None:
    keys = list(next(iter(figures.values())))
    print(f"{'figure':32}" + "".join(f"{name:>14}" for name in figures))
    for key in keys:
        print(f"{key:32}" + "".join(f"{values[key]:>14}" for values in figures.values()))
    if OURS not in figures or len(figures) < 2:
        return
    print(
        f"\n{OURS} against each baseline: violation seconds <= {VIOLATION_RATIO}x (<= "
        f"{VIOLATION_FLOOR_S:.0f} s where it has none), replica-seconds <= {COST_RATIO}x"
    )
    print(f"{'baseline':14}{'component':10}{'violation s':>20}{'ratio':>8}{'cost ratio':>12}  goal")
    for verdict in judge(figures):
        pair = f"{verdict.violation_s:.0f} / {verdict.baseline_violation_s:.0f}"
        ratio = verdict.violation_ratio
        print(
            f"{verdict.baseline:14}{verdict.component:10}{pair:>20}"
            f"{'-' if ratio is None else f'{ratio:.2f}':>8}{verdict.cost_ratio or 0:>12.3f}  "
            + ("met" if verdict.met else "MISSED: " + "; ".join(verdict.misses()))
        )


if __name__ == "__main__":
    sys.exit(main())
