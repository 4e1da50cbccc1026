"""Reconciles in flight at once, which goes first, and one pending settle per stack.

kopf starts a handler for every stack at once (a thousand after a restart or
one big apply). Each handler waits here for one of a few slots, by priority
(a stack whose spec is not yet observed before a resumed one), so stacks are
finished one after another instead of all at the end, and the kube layer's
request slots are shared by few reconciles that each get somewhere.

Work started by the children's watch events (a status refresh, a drift
repair) is coalesced: a stack has at most one such task waiting, which reads
the state when it runs, so a burst of events costs one pass, not one each.
Such work that fails is submitted again after a jittered delay that doubles
with each failure of that key (up to a minute).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from retention_operator.kube.limiter import Limiter, Priority, priority

logger = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_WORKERS = 8
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0


@dataclass(eq=False)
class _Pending:
    level: Priority
    work: Callable[[], Awaitable[None]]
    task: asyncio.Task[None] | None = None
    started: bool = False
    again: Priority | None = None


@dataclass
class WorkQueue:
    """At most ``workers`` units of work at once, served by priority; see the module docstring."""

    workers: int = DEFAULT_WORKERS
    _slots: Limiter = field(init=False)
    _pending: dict[Hashable, _Pending] = field(init=False, default_factory=dict)
    _failures: dict[Hashable, int] = field(init=False, default_factory=dict)
    _closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._slots = Limiter(self.workers, floor=self.workers)

    @property
    def running(self) -> int:
        return self._slots.in_flight

    @property
    def waiting(self) -> int:
        return self._slots.waiting

    async def run(self, level: Priority, work: Callable[[], Awaitable[T]]) -> T:
        """Wait for a slot at ``level``, then run ``work`` (its requests at that level too)."""
        async with self._slots.slot(level):
            with priority(level):
                return await work()

    def submit(self, key: Hashable, level: Priority, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` once for ``key`` soon; a submit while one waits only raises its priority.

        A submit while the key's work already runs asks for one more run after
        it (the state may have changed after it was read). Errors are logged.
        """
        if self._closed:
            return
        pending = self._pending.get(key)
        if pending is not None:
            if pending.started:
                pending.again = level if pending.again is None else min(pending.again, level)
                return
            if level >= pending.level:
                return
            # Waiting at a lower priority: wait again at the higher one.
            assert pending.task is not None
            pending.task.cancel()
        entry = _Pending(level, work)
        self._pending[key] = entry
        entry.task = asyncio.get_running_loop().create_task(self._one(key, entry))

    async def close(self) -> None:
        """Cancel the submitted work and take no more (at shutdown, before the client closes)."""
        self._closed = True
        tasks = [p.task for p in self._pending.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

    async def _one(self, key: Hashable, entry: _Pending) -> None:
        try:
            async with self._slots.slot(entry.level):
                entry.started = True
                with priority(entry.level):
                    await entry.work()
        except asyncio.CancelledError:
            if entry.started:
                raise
            return
        except Exception as exc:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = random.uniform(0.5, 1.0) * min(
                RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (failures - 1)
            )
            logger.warning("work for %s failed, again in %.1fs: %r", key, delay, exc)
            asyncio.get_running_loop().call_later(delay, self.submit, key, entry.level, entry.work)
        else:
            self._failures.pop(key, None)
        finally:
            if self._pending.get(key) is entry and entry.started:
                del self._pending[key]
                if entry.again is not None:
                    self.submit(key, entry.again, entry.work)
