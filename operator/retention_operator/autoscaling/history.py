"""The forecast's history: read from Prometheus and learned beside the ticks, not in them.

At a stack's first tick (an operator start, a new stack) the loop hands a stack with a
Prometheus and the forecast on to :meth:`HistoryLearner.want`; the tick goes on at
once and the stack is scaled reactively until its history is learned. One task works
through the stacks wanted, oldest first, :data:`BATCH_STACKS` at a time:

1. the batch's request rate of the last :data:`.forecast.KEPT_DAYS` days, by range
   queries of those stacks' series only (:meth:`.signals.SignalReader.read_history`);
2. each stack's points learned (:func:`.forecast.learn`) in a worker thread, one
   stack at a time, so the event loop (the ticks, kopf's handlers) is never held for
   a whole history; the GIL is shared, so a tick that runs meanwhile is slowed, not
   stopped;
3. the learned forecast handed to ``seed``, which installs it if the stack still wants
   it.

So an operator start with a thousand stacks holds one batch's points at a time, not
every stack's (28 days are 40,320 points, about 4.5 MB of Python tuples a stack), asks
Prometheus one batch at a time, and spends the learning's CPU beside the ticks. A
read that fails leaves its stacks to learn from the ticks alone (logged by the reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from retention_operator import telemetry
from retention_operator.autoscaling import forecast
from retention_operator.autoscaling.signals import LatencySource, StackKey

logger = logging.getLogger(__name__)

# Stacks whose history is read and held at once: 8 x 28 days of points a minute are
# about 36 MB of points, and each range query answers 8 x 10,080 points at most.
BATCH_STACKS = 8

Seed = Callable[[StackKey, forecast.Forecast], bool]
"""Install a learned forecast for a stack; False if the stack no longer wants it."""


class HistoryReader(Protocol):
    """What the learner reads with (:class:`.signals.SignalReader`)."""

    async def read_history(
        self,
        stacks: Mapping[LatencySource, Sequence[StackKey]],
        *,
        start: float,
        end: float,
    ) -> dict[StackKey, list[tuple[float, float]]]: ...


class HistoryLearner:
    """The stacks whose history is to be learned, and the one task that learns it."""

    def __init__(self, *, reader: HistoryReader, clock: Callable[[], float], seed: Seed) -> None:
        self._reader = reader
        self._clock = clock
        self._seed = seed
        self._wanted: dict[StackKey, LatencySource] = {}
        self._task: asyncio.Task[None] | None = None

    def want(self, key: StackKey, source: LatencySource) -> None:
        """Learn ``key``'s history from ``source`` (after the stacks wanted before it)."""
        self._wanted.setdefault(key, source)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="retention-forecast-history"
            )

    def forget(self, key: StackKey) -> None:
        """Do not learn ``key``'s history (deleted, or its forecast turned off)."""
        self._wanted.pop(key, None)

    @property
    def pending(self) -> int:
        """Stacks wanted and not yet read."""
        return len(self._wanted)

    async def idle(self) -> None:
        """Wait until every stack wanted so far has been learned (or its read failed)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Cancel the task; the stacks still wanted are dropped."""
        task, self._task = self._task, None
        self._wanted.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while self._wanted:
            batch = list(self._wanted.items())[:BATCH_STACKS]
            for key, _ in batch:
                del self._wanted[key]
            try:
                await self._learn(batch)
            except Exception:
                # One batch's failure (a bug, an answer of the wrong shape) must not
                # end the learning of the others: those stacks learn from the ticks.
                logger.exception("learning the forecast's history failed")

    async def _learn(self, batch: list[tuple[StackKey, LatencySource]]) -> None:
        grouped: dict[LatencySource, list[StackKey]] = {}
        for key, source in batch:
            grouped.setdefault(source, []).append(key)
        now = self._clock()
        history = await self._reader.read_history(
            grouped, start=now - forecast.KEPT_DAYS * forecast.DAY_SECONDS, end=now
        )
        for key, _ in batch:
            points = history.pop(key, None)
            if points is None:
                continue
            learned = await asyncio.to_thread(forecast.learn, forecast.Forecast(), points)
            if self._seed(key, learned):
                telemetry.stack_logger(logger, *key).info(
                    "the forecast read %d points of the API's request rate from Prometheus "
                    "(%d full days)",
                    len(points),
                    forecast.days_known(learned),
                )
