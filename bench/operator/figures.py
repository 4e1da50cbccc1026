"""What the benchmark reads off the operator: its process, its /metrics, its profile.

CPU and peak RSS come from ``/proc/<pid>`` (``utime + stime``, ``VmHWM``);
request counts and the autoscaling tick's duration from the operator's own
``/metrics``; a profile from py-spy attached to the running process.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# Libraries whose frames the inclusive summary keeps (the rest is the interpreter and asyncio).
INCLUSIVE_OF = ("retention_operator", "kopf", "httpx", "aiohttp", "pydantic", "redis", "prometheus")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def load() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass(frozen=True)
class Metrics:
    """The operator's counters that the benchmark compares between two moments."""

    requests: float
    mutating: float
    reconciles: float
    tick_sum: float
    tick_count: float
    tick_buckets: dict[float, float]
    drift_corrected: float
    # Python's garbage collections by generation ("0", "1", "2"), from prometheus_client.
    gc_collections: dict[str, float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        requests = mutating = reconciles = tick_sum = tick_count = drift = 0.0
        buckets: dict[float, float] = {}
        collections: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                name, labels, value = sample.name, sample.labels, sample.value
                if name == "retention_operator_kube_requests_total":
                    requests += value
                    if labels.get("verb") in MUTATING:
                        mutating += value
                elif name == "controller_runtime_reconcile_total":
                    reconciles += value
                elif name == "retention_autoscaler_tick_duration_seconds_sum":
                    tick_sum = value
                elif name == "retention_autoscaler_tick_duration_seconds_count":
                    tick_count = value
                elif name == "retention_autoscaler_tick_duration_seconds_bucket":
                    buckets[float(labels["le"])] = value
                elif name == "retention_operator_drift_corrected_total":
                    drift = value
                elif name == "python_gc_collections_total":
                    collections[labels["generation"]] = value
        return cls(
            requests, mutating, reconciles, tick_sum, tick_count, buckets, drift, collections
        )


def tick_figures(before: Metrics, after: Metrics) -> dict[str, float | None]:
    """Mean autoscaling tick between two readings, and the bucket bound under which all fell."""
    count = after.tick_count - before.tick_count
    if count <= 0:
        return {"ticks": 0, "tick_mean_s": None, "tick_max_bucket_s": None}
    grew = [
        le
        for le, value in sorted(after.tick_buckets.items())
        if value - before.tick_buckets.get(le, 0.0) >= count
    ]
    return {
        "ticks": int(count),
        "tick_mean_s": round((after.tick_sum - before.tick_sum) / count, 4),
        # +Inf is no figure (and no JSON): say "over the largest bucket" as None.
        "tick_max_bucket_s": grew[0] if grew and grew[0] != float("inf") else None,
    }


class Profile:
    """py-spy attached to a process, writing folded stacks; ``stop`` summarises them."""

    def __init__(self, pid: int, path: Path, *, rate: int = 25) -> None:
        self.path = path
        py_spy = Path(sys.executable).with_name("py-spy")
        sampling = ["--rate", str(rate), "--format", "raw", "--nonblocking"]
        self._proc = subprocess.Popen(
            [str(py_spy), "record", "--pid", str(pid), *sampling, "--output", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self, top: int = 12) -> dict[str, list[tuple[str, float]]]:
        """Stop sampling; return the top frames by own and by inclusive share of samples."""
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        if not self.path.exists():
            return {"error": [(self._proc.stderr.read() if self._proc.stderr else "", 0.0)]}
        own: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        total = 0
        for line in self.path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [f for f in stack.split(";") if f]
            n = int(count)
            total += n
            if frames:
                own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
        summary = {
            "own": [(f, round(100 * n / total, 1)) for f, n in own.most_common(top)],
            "inclusive": [
                (f, round(100 * n / total, 1))
                for f, n in inclusive.most_common(top * 4)
                if any(part in f for part in INCLUSIVE_OF)
            ][:top],
        }
        summary_path = self.path.with_suffix(".top.txt")
        summary_path.write_text(
            "\n".join(
                f"{kind}\t{share}%\t{frame}"
                for kind, rows in summary.items()
                for frame, share in rows
            )
            + "\n"
        )
        return summary
