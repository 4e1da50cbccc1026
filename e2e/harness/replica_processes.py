"""Real processes that follow a Deployment's replicas, for a control plane whose nodes
are KWOK's: KWOK makes the pods Running but runs no container, so a test that needs the
workers to really consume runs them here, as many as ``spec.replicas`` says.

A thread reads the Deployment every ``interval`` seconds; when replicas rise it starts
processes, when they fall it stops the newest with SIGTERM (the graceful stop a kubelet
sends, then SIGKILL after ``grace`` seconds), as a scale-in would. Every start is
recorded, so a test can say how many consumers ran at most. Bounded: the thread ends
at :meth:`stop` or after ``limit_s`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from harness.procs import Proc

Start = Callable[[int], Proc]
"""Start replica number ``n`` (counting from 0 over the whole run); returns its process."""


class ReplicaProcesses:
    """Processes following ``namespace/name``'s ``spec.replicas``; see the module docstring."""

    def __init__(
        self,
        apps: Any,
        *,
        namespace: str,
        name: str,
        start: Start,
        interval: float = 0.5,
        grace: float = 15.0,
        limit_s: float = 600.0,
    ) -> None:
        self._apps, self._namespace, self._name = apps, namespace, name
        self._start, self._interval, self._grace, self._limit = start, interval, grace, limit_s
        self._running: list[Proc] = []
        self._started = 0
        self._most = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._follow, name=f"replicas-{name}", daemon=True)

    def __enter__(self) -> ReplicaProcesses:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def running(self) -> int:
        """Processes alive now."""
        with self._lock:
            return sum(proc.alive() for proc in self._running)

    @property
    def most(self) -> int:
        """The most processes that ran at once."""
        return self._most

    def stop(self) -> None:
        """End the thread and stop every process (SIGTERM, then SIGKILL after the grace)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._grace * 2 + 5)
        with self._lock:
            procs, self._running = self._running, []
        for proc in procs:
            proc.stop(timeout=self._grace)

    def _wanted(self) -> int | None:
        try:
            spec = self._apps.read_namespaced_deployment(self._name, self._namespace).spec
        except Exception:  # The API server may be busy; the next poll tries again.
            return None
        return int(spec.replicas or 0) if spec is not None else None

    def _follow(self) -> None:
        deadline = time.monotonic() + self._limit
        while not self._stop.wait(self._interval) and time.monotonic() < deadline:
            wanted = self._wanted()
            if wanted is None:
                continue
            with self._lock:
                self._running = [proc for proc in self._running if proc.alive()]
                while len(self._running) < wanted:
                    self._running.append(self._start(self._started))
                    self._started += 1
                leaving = self._running[wanted:]
                self._running = self._running[:wanted]
                self._most = max(self._most, len(self._running))
            for proc in leaving:
                proc.stop(timeout=self._grace)
