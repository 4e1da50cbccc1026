"""One PNG per arm from its ``timeline.csv``: replicas and the client's p95 over time."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display here

import matplotlib.pyplot as plt

from bench.closedloop.arms import Plant


def _column(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(r[name]) if r[name] != "" else float("nan") for r in rows]


def plot(timeline: Path, *, arm: str, plant: Plant) -> Path:
    """Write ``<arm>.png`` beside ``timeline``: API and worker replicas (wanted and pods),
    the offered rate, and the client's p95 per 5 s window against the target."""
    with timeline.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    t = _column(rows, "t")
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    top.step(t, _column(rows, "api_wanted"), where="post", label="API wanted")
    top.step(t, _column(rows, "api_pods"), where="post", label="API pods", linestyle=":")
    top.step(t, _column(rows, "workers_wanted"), where="post", label="workers wanted")
    top.step(t, _column(rows, "worker_pods"), where="post", label="worker pods", linestyle=":")
    top.set_ylabel("replicas")
    rate = top.twinx()
    rate.plot(t, _column(rows, "offered_rps"), color="grey", alpha=0.4, label="offered req/s")
    rate.set_ylabel("offered req/s")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(f"{arm}: replicas and client p95 (5 s windows)")
    bottom.plot(t, _column(rows, "p95_ms"), label="client p95")
    bottom.axhline(plant.target_p95_ms, color="red", linestyle="--", label="target")
    bottom.set_yscale("log")
    bottom.set_ylabel("p95 (ms)")
    bottom.set_xlabel("run seconds")
    bottom.legend(loc="upper left", fontsize="small")
    out = timeline.parent / f"{arm}.png"
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
