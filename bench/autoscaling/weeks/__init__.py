"""Multi-day traces for the forecast: a week of one daily shape, with surges at a fixed
hour, and with a day that breaks the pattern.

``python -m bench.autoscaling.weeks`` writes them into ``traces/weeks/`` (seeded, so
rerunning changes nothing). Each is seven days from t = 0 (midnight UTC), one row a
minute; the daily shape runs from 150 req/s and 25 jobs/s at night to 1,200 req/s and
200 jobs/s at 15:00, with 5 % row noise (10 % on jobs), like the public traces:

* ``week``: the daily shape alone;
* ``week-surges``: plus, every day at 20:00, fifteen minutes at 3x (an evening sale: longer than
  the five minutes the surge memory of the reactive policy takes for a surge);
* ``week-deviating``: as ``week-surges``, but day 6 (a holiday) runs at 0.6x all
  day and its surge comes at 17:00, three hours early, and not at 20:00.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "traces" / "weeks"
DAYS = 7
STEP_S = 60
DAY_S = 86400
NIGHT_RPS, PEAK_RPS = 150.0, 1200.0
NIGHT_JOBS, PEAK_JOBS = 25.0, 200.0
NOISE = 0.05
SURGE_AT_H, SURGE_S, SURGE_FACTOR = 20.0, 900, 3.0
# The day that deviates (0-based) in week-deviating: its level, and its surge's hour.
ODD_DAY, ODD_LEVEL, ODD_SURGE_AT_H = 5, 0.6, 17.0
# The first day whose surge a forecast can know (two days before it).
LEARNED_FROM = 2


@dataclass(frozen=True)
class Week:
    surges: bool
    deviating: bool


TRACES = {
    "week.csv": Week(surges=False, deviating=False),
    "week-surges.csv": Week(surges=True, deviating=False),
    "week-deviating.csv": Week(surges=True, deviating=True),
}


def shape(hour: float) -> float:
    """The daily shape, 0 at night to 1 at 15:00: a raised half sine from 06:00 to 24:00."""
    if hour < 6.0:
        return 0.0
    return float(math.sin(math.pi * (hour - 6.0) / 18.0) ** 1.5)


def level(t: int, week: Week) -> tuple[float, float]:
    """The (request, job) multipliers of the daily shape's level at ``t``: the day's
    level and a surge, if one runs."""
    day, second = divmod(t, DAY_S)
    odd = week.deviating and day == ODD_DAY
    factor = ODD_LEVEL if odd else 1.0
    surge_at = int((ODD_SURGE_AT_H if odd else SURGE_AT_H) * 3600)
    if week.surges and surge_at <= second < surge_at + SURGE_S:
        factor *= SURGE_FACTOR
    return factor, factor


def write(path: Path, week: Week, *, seed: int) -> None:
    rng = random.Random(seed)
    rows = ["t,api_rps,jobs_per_s"]
    for t in range(0, DAYS * DAY_S, STEP_S):
        bump = shape((t % DAY_S) / 3600.0)
        rps_factor, job_factor = level(t, week)
        rps = (NIGHT_RPS + (PEAK_RPS - NIGHT_RPS) * bump) * rps_factor
        jobs = (NIGHT_JOBS + (PEAK_JOBS - NIGHT_JOBS) * bump) * job_factor
        rps *= 1 + rng.gauss(0.0, NOISE)
        jobs *= 1 + rng.gauss(0.0, 2 * NOISE)
        rows.append(f"{t},{max(rps, 0.0):.1f},{max(jobs, 0.0):.1f}")
    path.write_text("\n".join(rows) + "\n")


def surges(week: Week) -> list[tuple[int, int, bool]]:
    """(start, end, learned) of each surge: learned when it comes at the hour of the
    days before, from day :data:`LEARNED_FROM` on (the forecast needs two days)."""
    if not week.surges:
        return []
    out = []
    for day in range(DAYS):
        odd = week.deviating and day == ODD_DAY
        start = day * DAY_S + int((ODD_SURGE_AT_H if odd else SURGE_AT_H) * 3600)
        out.append((start, start + SURGE_S, day >= LEARNED_FROM and not odd))
    return out


def main() -> int:
    """Write every trace into :data:`HERE`."""
    HERE.mkdir(parents=True, exist_ok=True)
    for name, week in sorted(TRACES.items()):
        # The same seed for every trace: they differ only where the trace says.
        write(HERE / name, week, seed=7)
        print(HERE / name)
    return 0
