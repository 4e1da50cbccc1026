"""``python -m bench.forecast``: the cost of seeding the forecast from history.

Generates ``--stacks`` synthetic request-rate histories of ``--days`` days (a point a
minute at hh:mm:30, as ``SignalReader.read_history`` reads them; a daily shape, a
weekend dip, an evening surge and 5 % noise, seeded), then prints:

* the process CPU seconds (``time.process_time``) that :func:`forecast.learn` takes for
  all of them, and per stack;
* the same for the definition, one :func:`forecast.observe` per point (what ``learn``
  was until it learned in one pass), over ``--reference`` of the stacks, the ratio of
  the two, and whether both gave the same days (they must);
* the bytes one learned forecast holds (``tracemalloc``: what is still allocated after
  learning, the history itself not counted) and the peak while learning;
* both scaled to 1,000 stacks (CPU: one API series each; memory: two components each),
  and the load average, which a shared machine's figures depend on.

Process CPU, not wall time: a busy machine disturbs it less. It is a benchmark that
prints figures, not a timed test.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import time
import tracemalloc
from collections.abc import Sequence

from retention_operator.autoscaling import forecast

MINUTE = 60.0
DAY = forecast.DAY_SECONDS
# Day 20,000 after the epoch (a Monday in 2024): any whole day works, UTC.
FIRST_DAY = 20_000
SCALE_STACKS = 1000


def history(seed: int, *, days: int) -> list[tuple[float, float]]:
    """One stack's request rate, a point a minute for ``days`` days: 20 to 400 req/s by
    the hour (times a per-stack level), 0.7x on Saturdays and Sundays, 3x from 20:00 to
    20:15, with 5 % noise."""
    rng = random.Random(seed)
    level = rng.uniform(0.5, 3.0)
    points = []
    for day in range(FIRST_DAY, FIRST_DAY + days):
        weekend = 0.7 if (day + 3) % 7 >= 5 else 1.0
        for minute in range(forecast.DAY_MINUTES):
            hour = minute / 60.0
            base = 20.0 + 380.0 * max(0.0, math.sin(math.pi * (hour - 6.0) / 18.0))
            surge = 3.0 if 1200 <= minute < 1215 else 1.0
            value = level * weekend * surge * base * rng.gauss(1.0, 0.05)
            points.append((day * DAY + minute * MINUTE + 30.0, max(0.0, value)))
    return points


def by_observe(points: Sequence[tuple[float, float]]) -> forecast.Forecast:
    """The definition: every point through :func:`forecast.observe`, one at a time."""
    learned = forecast.Forecast()
    for at, value in points:
        learned = forecast.observe(learned, at=at, value=value)
    return learned


def held_bytes(points: Sequence[tuple[float, float]]) -> tuple[int, int]:
    """(bytes still allocated after learning ``points``, peak bytes while learning).

    A day is learned first, so that first-call caches are not counted, and garbage is
    collected before reading: what is left is the forecast."""
    forecast.learn(forecast.Forecast(), points[: forecast.DAY_MINUTES])
    gc.collect()
    tracemalloc.start()
    try:
        learned = forecast.learn(forecast.Forecast(), points)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del learned
    return current, peak


def main(argv: Sequence[str] | None = None) -> dict[str, float | int | bool]:
    parser = argparse.ArgumentParser(prog="python -m bench.forecast", description=__doc__)
    parser.add_argument("--stacks", type=int, default=100, help="histories to learn")
    parser.add_argument("--days", type=int, default=28, help="days of history per stack")
    parser.add_argument(
        "--reference",
        type=int,
        default=10,
        help="of them, how many also by the definition (one observe per point; slow)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    histories = [history(seed, days=args.days) for seed in range(args.stacks)]
    load_before = os.getloadavg()[0]

    started = time.process_time()
    learned = [forecast.learn(forecast.Forecast(), points) for points in histories]
    learn_cpu = time.process_time() - started

    compared = histories[: max(0, min(args.reference, args.stacks))]
    started = time.process_time()
    defined = [by_observe(points) for points in compared]
    reference_cpu = time.process_time() - started
    same_days = all(
        fast.days == slow.days and fast.today == slow.today
        for fast, slow in zip(learned, defined, strict=False)
    )

    held, peak = held_bytes(histories[0])
    per_stack = learn_cpu / max(1, args.stacks)
    reference_per_stack = reference_cpu / max(1, len(compared))
    figures: dict[str, float | int | bool] = {
        "stacks": args.stacks,
        "days": args.days,
        "days_learned": forecast.days_known(learned[0]) if learned else 0,
        "learn_cpu_s": round(learn_cpu, 3),
        "learn_cpu_per_stack_ms": round(per_stack * 1000.0, 2),
        "reference_stacks": len(compared),
        "reference_cpu_per_stack_ms": round(reference_per_stack * 1000.0, 2),
        "reference_over_learn": round(reference_per_stack / per_stack, 1) if per_stack else 0.0,
        "same_days": same_days,
        "held_bytes_per_forecast": held,
        "peak_bytes_while_learning": peak,
        "cpu_s_at_1000_stacks": round(per_stack * SCALE_STACKS, 1),
        "held_mib_at_1000_stacks_2_components": round(held * 2 * SCALE_STACKS / 2**20, 1),
        "load_average_1m": round(max(load_before, os.getloadavg()[0]), 2),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        width = max(len(key) for key in figures)
        for key, value in figures.items():
            print(f"{key:<{width}}  {value}")
    return figures


if __name__ == "__main__":
    main()
