"""Write the surge traces (see the package docstring)."""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "traces" / "surges"
STEP_S = 5
BASE_RPS = 300.0
BASE_JOBS = 50.0
# Row noise of the public traces: a few percent around the level.
NOISE = 0.05


@dataclass(frozen=True)
class Surge:
    start: int
    length: int
    factor: float


def _regular(*, length: int, period: int, offset: int, surge: int, factor: float) -> list[Surge]:
    return [Surge(t, surge, factor) for t in range(offset, length - surge, period)]


def _irregular(*, length: int, seed: int) -> list[Surge]:
    rng = random.Random(seed)
    out, t = [], 600
    while t < length - 200:
        size = rng.randint(45, 110)
        out.append(Surge(t, size, rng.uniform(3.0, 6.0)))
        t += size + rng.randint(120, 480)
    return out


TRACES = {
    # 90 s at 4x every 5 minutes, for an hour.
    "surges-regular.csv": (3600, _regular(length=3600, period=300, offset=600, surge=90, factor=4)),
    # 60 s at 5x every 3 minutes, for an hour.
    "surges-fast.csv": (3600, _regular(length=3600, period=180, offset=600, surge=60, factor=5)),
    # 100 s at 4x every 10 minutes, for an hour and a half: room to scale down between.
    "surges-sparse.csv": (5400, _regular(length=5400, period=600, offset=600, surge=100, factor=4)),
    # 45 to 110 s at 3x to 6x, 2 to 8 minutes apart, for an hour and a half.
    "surges-irregular.csv": (5400, _irregular(length=5400, seed=9)),
}


def _level(t: int, surges: list[Surge]) -> float:
    for surge in surges:
        if surge.start <= t < surge.start + surge.length:
            return surge.factor
    return 1.0


def write(path: Path, length: int, surges: list[Surge], *, seed: int) -> None:
    rng = random.Random(seed)
    rows = ["t,api_rps,jobs_per_s"]
    for t in range(0, length, STEP_S):
        level = _level(t, surges)
        rps = BASE_RPS * level * (1 + rng.gauss(0.0, NOISE))
        jobs = BASE_JOBS * level * (1 + rng.gauss(0.0, 2 * NOISE))
        rows.append(f"{t},{max(rps, 0.0):.1f},{max(jobs, 0.0):.1f}")
    path.write_text("\n".join(rows) + "\n")


def main() -> int:
    HERE.mkdir(parents=True, exist_ok=True)
    for index, (name, (length, surges)) in enumerate(sorted(TRACES.items())):
        write(HERE / name, length, surges, seed=index + 1)
        print(HERE / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
