"""Signal samples, one per tick per component, and the bounded history of them.

The loop (or the simulator) reads the signals, wraps each reading in a sample
and appends it to the stack's :class:`SignalHistory`; the policy only reads the
history. A value of ``None`` means the signal could not be read (a failed query,
an empty result); it is never replaced by zero.

Timestamps are seconds on any clock that only moves forward (the loop uses
``time.time()``); a Prometheus sample carries the time of the data it holds,
not the time the loop asked, so that staleness can be judged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar


@dataclass(frozen=True, slots=True)
class ApiSample:
    """The API's signals at ``at``: p95 latency in milliseconds and request rate (per
    second), both as Prometheus computes them over its window, and ``rps_recent``, the
    rate over the last scrape interval only (None when unknown)."""

    at: float
    p95_ms: float | None
    rps: float | None
    rps_recent: float | None = None


@dataclass(frozen=True, slots=True)
class WorkerSample:
    """The queue's signals at ``at``: the backlog (group lag + pending), two
    monotonic counters, jobs enqueued and jobs completed since some origin, and
    ``queue_wait_s``, the age of the oldest job not yet taken (0 when none waits).

    Counters may reset (a Redis restart); rates derived from them skip a reset.
    """

    at: float
    backlog: float | None
    arrivals_total: float | None
    completed_total: float | None
    queue_wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class Replicas:
    """A Deployment's replicas: ``desired`` is ``spec.replicas``, ``ready`` counts
    ready pods (so ``desired - ready`` pods are on their way, or leaving)."""

    desired: int
    ready: int


class _Timed(Protocol):
    @property
    def at(self) -> float: ...


S = TypeVar("S", bound=_Timed)


class SignalHistory(Generic[S]):
    """The recent samples of one component of one stack, oldest first.

    Bounded twice: samples older than ``max_age_seconds`` before the newest are
    dropped, and at most ``max_samples`` are kept. A sample that is not newer than
    the last one is ignored (the loop may see one Prometheus scrape on several ticks).
    """

    __slots__ = ("_max_age", "_samples")

    def __init__(self, *, max_age_seconds: float = 600.0, max_samples: int = 256) -> None:
        self._max_age = max_age_seconds
        self._samples: deque[S] = deque(maxlen=max_samples)

    def append(self, sample: S) -> bool:
        """Add ``sample``; return False (and keep nothing) if it is not newer than the last."""
        if self._samples and sample.at <= self._samples[-1].at:
            return False
        self._samples.append(sample)
        horizon = sample.at - self._max_age
        while self._samples[0].at < horizon:
            self._samples.popleft()
        return True

    def latest(self) -> S | None:
        """The newest sample, or None if there is none."""
        return self._samples[-1] if self._samples else None

    def since(self, at: float) -> list[S]:
        """The samples taken at or after ``at``, oldest first."""
        # Walked from the newest: the policy asks for the last seconds of a history
        # that holds minutes, every tick, for every stack.
        recent: list[S] = []
        for sample in reversed(self._samples):
            if sample.at < at:
                break
            recent.append(sample)
        recent.reverse()
        return recent

    def __iter__(self) -> Iterator[S]:
        return iter(self._samples)

    def __reversed__(self) -> Iterator[S]:
        """Newest first (samples only ever get newer, so this is also by time)."""
        return reversed(self._samples)

    def __len__(self) -> int:
        return len(self._samples)
