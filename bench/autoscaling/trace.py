"""Load traces: CSV with header ``t,api_rps,jobs_per_s``, each value held until the next row.

Rows may come in any order and at any step; blank lines are skipped. The last row
holds for the median step of the trace (60 s for a one-row trace). Extra
columns are ignored; a missing column or an unreadable number is an error that
names the line.
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

COLUMNS = ("t", "api_rps", "jobs_per_s")
ONE_ROW_STEP_SECONDS = 60.0


class TraceError(ValueError):
    """The trace file cannot be read as a load trace."""


@dataclass(frozen=True, slots=True)
class Series:
    """A piecewise-constant rate: ``values[i]`` holds on ``[starts[i], starts[i+1])``."""

    starts: tuple[float, ...]
    values: tuple[float, ...]
    end: float

    def integral(self, a: float, b: float) -> float:
        """The amount that arrives in ``[a, b)``: the integral of the rate (0 outside)."""
        total = 0.0
        index = max(bisect_right(self.starts, a) - 1, 0)
        while index < len(self.starts) and self.starts[index] < b:
            low = max(a, self.starts[index])
            high = min(b, self._stop(index))
            if high > low:
                total += self.values[index] * (high - low)
            index += 1
        return total

    def _stop(self, index: int) -> float:
        return self.starts[index + 1] if index + 1 < len(self.starts) else self.end


@dataclass(frozen=True, slots=True)
class Trace:
    """A load trace: requests and jobs per second over ``[start, end)``."""

    api_rps: Series
    jobs_per_s: Series

    @property
    def start(self) -> float:
        return self.api_rps.starts[0]

    @property
    def end(self) -> float:
        return self.api_rps.end


def read_trace(path: Path) -> Trace:
    """Read a trace file; raises :class:`TraceError` naming the problem and line."""
    rows: dict[float, tuple[float, float]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in COLUMNS if name not in fields]
        if missing:
            raise TraceError(f"{path}: missing column(s) {', '.join(missing)}")
        reader.fieldnames = fields
        for row in reader:
            if not any((value or "").strip() for value in row.values()):
                continue
            rows[_number(row, "t", reader.line_num)] = (
                max(_number(row, "api_rps", reader.line_num), 0.0),
                max(_number(row, "jobs_per_s", reader.line_num), 0.0),
            )
    if not rows:
        raise TraceError(f"{path}: no rows")
    starts = tuple(sorted(rows))
    steps = [b - a for a, b in pairwise(starts)]
    end = starts[-1] + (_median(steps) if steps else ONE_ROW_STEP_SECONDS)
    return Trace(
        api_rps=Series(starts, tuple(rows[t][0] for t in starts), end),
        jobs_per_s=Series(starts, tuple(rows[t][1] for t in starts), end),
    )


def _number(row: dict[str, str], name: str, line: int) -> float:
    text = (row.get(name) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"line {line}: {name}={text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise TraceError(f"line {line}: {name}={text!r} is not a finite number")
    return value


def _median(values: list[float]) -> float:
    # Not statistics.median: statistics imports the standard `operator` module, which
    # pytest's importlib mode shadows with this repository's `operator` folder.
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
