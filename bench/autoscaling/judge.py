"""Judging the policy against every baseline: ratios per component, and the goal.

The goal, for every baseline ``b`` and each component apart (the API: SLO-violation
seconds and API replica-seconds; the workers: queue-wait-violation seconds and
worker replica-seconds): our violation seconds at most :data:`VIOLATION_RATIO` of
``b``'s (at most :data:`VIOLATION_FLOOR_S` where ``b`` has none), and our
replica-seconds at most :data:`COST_RATIO` of ``b``'s. Pure functions over the
figures ``python -m bench.autoscaling --json`` prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

OURS = "retention"
# Ours with a part turned off (the forecast): not a baseline, so never judged against.
VARIANTS = frozenset({"retention-reactive"})
VIOLATION_RATIO = 0.5
VIOLATION_FLOOR_S = 5.0
COST_RATIO = 1.1

Component = Literal["api", "workers"]
# (violation figure, cost figure) of each component.
FIGURES: dict[Component, tuple[str, str]] = {
    "api": ("api_slo_violation_s", "api_replica_s"),
    "workers": ("queue_wait_violation_s", "worker_replica_s"),
}
Figures = Mapping[str, Mapping[str, float | int]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Ours against one baseline, for one component."""

    baseline: str
    component: Component
    violation_s: float
    baseline_violation_s: float
    replica_s: float
    baseline_replica_s: float

    @property
    def violation_ratio(self) -> float | None:
        """Our violation seconds over the baseline's; None when the baseline has none."""
        if self.baseline_violation_s <= 0:
            return None
        return self.violation_s / self.baseline_violation_s

    @property
    def cost_ratio(self) -> float | None:
        """Our replica-seconds over the baseline's; None when the baseline has none."""
        if self.baseline_replica_s <= 0:
            return None
        return self.replica_s / self.baseline_replica_s

    @property
    def violation_met(self) -> bool:
        if self.baseline_violation_s <= 0:
            return self.violation_s <= VIOLATION_FLOOR_S
        return self.violation_s <= VIOLATION_RATIO * self.baseline_violation_s

    @property
    def cost_met(self) -> bool:
        return self.replica_s <= COST_RATIO * self.baseline_replica_s

    @property
    def met(self) -> bool:
        return self.violation_met and self.cost_met

    def misses(self) -> list[str]:
        """What falls short, each as one phrase with its size; empty when the goal holds."""
        out = []
        if not self.violation_met:
            if self.violation_ratio is None:
                out.append(
                    f"{self.component} violations {self.violation_s:.0f} s where "
                    f"{self.baseline} has none (goal <= {VIOLATION_FLOOR_S:.0f} s)"
                )
            else:
                out.append(
                    f"{self.component} violations {self.violation_ratio:.2f}x {self.baseline}'s "
                    f"({self.violation_s:.0f} s against {self.baseline_violation_s:.0f} s; "
                    f"goal <= {VIOLATION_RATIO}x)"
                )
        if not self.cost_met:
            ratio = self.cost_ratio
            out.append(
                f"{self.component} replica-seconds {ratio if ratio is not None else 0:.3f}x "
                f"{self.baseline}'s (goal <= {COST_RATIO}x)"
            )
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "baseline": self.baseline,
            "component": self.component,
            "violation_s": self.violation_s,
            "baseline_violation_s": self.baseline_violation_s,
            "violation_ratio": _rounded(self.violation_ratio),
            "replica_s": self.replica_s,
            "baseline_replica_s": self.baseline_replica_s,
            "cost_ratio": _rounded(self.cost_ratio),
            "met": self.met,
        }


def judge(figures: Figures) -> list[Verdict]:
    """Ours against every baseline in ``figures`` (every policy but ours and its
    :data:`VARIANTS`), API and workers apart."""
    ours = figures[OURS]
    verdicts = []
    for baseline, theirs in figures.items():
        if baseline == OURS or baseline in VARIANTS:
            continue
        for component, (violation, cost) in FIGURES.items():
            verdicts.append(
                Verdict(
                    baseline=baseline,
                    component=component,
                    violation_s=float(ours[violation]),
                    baseline_violation_s=float(theirs[violation]),
                    replica_s=float(ours[cost]),
                    baseline_replica_s=float(theirs[cost]),
                )
            )
    return verdicts


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
