"""How many requests the operator has in flight, and which one goes next.

Every request of :class:`~retention_operator.kube.client.KubeClient` holds a
slot of one :class:`Limiter` while it is on the wire, and the HTTP pool has as
many connections as the limiter has slots, so a request never waits on the
pool (no ``PoolTimeout``): it waits here, in a queue, for as long as it takes.
Waiters are served by priority, then first come first served, so the work
that makes progress (a new stack's children) is not stuck behind a thousand
status refreshes. Priority is not absolute: of every :data:`SHARE` slots
handed out while a lower priority waits, one goes to the oldest waiter below,
so a long burst of progress (a thousand new stacks) does not starve the
status refreshes that mark the finished ones Ready.

The limit adapts the way TCP's congestion window does (additive increase,
multiplicative decrease): a sign that the API server is overloaded (429, a
5xx, a timeout) halves the limit, each answered request raises it by
``1/limit`` back towards the maximum. A slow API server therefore sees fewer
requests from this operator, not more retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
from collections import deque
from collections.abc import AsyncIterator, Iterator
from enum import IntEnum


class Priority(IntEnum):
    """Lower values go first."""

    PROGRESS = 0
    """Creating or repairing children: what brings a stack closer to its spec."""
    NORMAL = 1
    """Resuming known stacks, autoscaling."""
    REFRESH = 2
    """Re-reading readiness into status."""


SHARE = 4
"""Of this many slots handed out past a waiting lower priority, one goes to it."""

_current: contextvars.ContextVar[Priority] = contextvars.ContextVar(
    "retention_kube_priority", default=Priority.NORMAL
)


def current_priority() -> Priority:
    """The priority of requests sent from the running task (NORMAL unless set)."""
    return _current.get()


@contextlib.contextmanager
def priority(level: Priority) -> Iterator[None]:
    """Send the requests of this block (and of tasks it creates) at ``level``."""
    token = _current.set(level)
    try:
        yield
    finally:
        _current.reset(token)


class Limiter:
    """A priority semaphore whose size moves between ``floor`` and ``ceiling`` (AIMD)."""

    def __init__(self, ceiling: int, *, floor: int = 2) -> None:
        if ceiling < 1:
            raise ValueError(f"a limiter needs at least one slot, not {ceiling}")
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self._limit = float(ceiling)
        self._in_flight = 0
        # Per priority, in arrival order: (arrival number, future).
        self._waiters: dict[Priority, deque[tuple[int, asyncio.Future[None]]]] = {
            level: deque() for level in Priority
        }
        self._order = itertools.count()
        self._passed_over = 0

    @property
    def limit(self) -> int:
        """Slots usable now (between floor and ceiling)."""
        return max(self.floor, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(1 for queue in self._waiters.values() for _, fut in queue if not fut.done())

    @contextlib.asynccontextmanager
    async def slot(self, level: Priority | None = None) -> AsyncIterator[None]:
        """Hold one slot for the block; waits (never fails) while all are taken."""
        await self._acquire(current_priority() if level is None else level)
        try:
            yield
        finally:
            self._release()

    def overloaded(self) -> None:
        """The API server pushed back: halve the limit (never below the floor)."""
        self._limit = max(float(self.floor), self._limit / 2)

    def answered(self) -> None:
        """A request got a timely answer: grow the limit by 1/limit up to the ceiling."""
        self._limit = min(float(self.ceiling), self._limit + 1 / self._limit)
        self._wake()

    async def _acquire(self, level: Priority) -> None:
        if self._in_flight < self.limit and not self.waiting:
            self._in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[level].append((next(self._order), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # The slot was handed over just as the waiter was cancelled: pass it on.
                self._release()
            raise

    def _release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._in_flight < self.limit and (fut := self._next()) is not None:
            self._in_flight += 1
            fut.set_result(None)

    def _next(self) -> asyncio.Future[None] | None:
        """The waiter to serve next (see :data:`SHARE`), taken off its queue."""
        for queue in self._waiters.values():
            while queue and queue[0][1].done():  # cancelled while waiting
                queue.popleft()
        waiting = [queue for queue in self._waiters.values() if queue]
        if not waiting:
            return None
        chosen = waiting[0]
        if len(waiting) > 1:
            self._passed_over += 1
            if self._passed_over >= SHARE:
                self._passed_over = 0
                chosen = min(waiting[1:], key=lambda queue: queue[0][0])
        else:
            self._passed_over = 0
        return chosen.popleft()[1]
