"""Fakes for the autoscaling loop's tests: an in-memory API server and stack bodies.

``FakeKube`` answers exactly the calls the loop makes (list Deployments, get
Secrets, apply, patch status, create Events) and records every write, so a
test can say how many writes a tick sent.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.settings import Settings

Manifest = dict[str, Any]


def stack_body(
    name: str,
    namespace: str = "shop",
    *,
    redis_url: str = "redis://127.0.0.1:6379/0",
    api: dict[str, Any] | None = None,
    workers: dict[str, Any] | None = None,
    paused: bool = False,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    """A valid RetentionStack body with an external Redis."""
    return {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "api": {
                "image": "example.invalid/app:1",
                "minReplicas": 2,
                "maxReplicas": 10,
                **(api or {}),
            },
            "workers": {"minReplicas": 1, "maxReplicas": 20, **(workers or {})},
            "redis": {"external": {"url": redis_url}},
            "pgbouncer": {
                "database": {"host": "db.example", "name": "app", "user": "app"},
                "credentialsSecretRef": {"name": "db"},
            },
            "paused": paused,
        },
    }


def deployment(name: str, namespace: str, *, replicas: int, ready: int | None = None) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": replicas if ready is None else ready},
    }


def _merge(into: Manifest, patch: Manifest) -> Manifest:
    out = copy.deepcopy(into)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = _merge(out.get(key) or {}, value)
        else:
            out[key] = value
    return out


class FakeKube:
    """The API server as dicts; Deployments keyed by (namespace, name)."""

    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], Manifest] = {}
        self.secrets: dict[tuple[str, str], Manifest] = {}
        self.status: dict[tuple[str, str], Manifest] = {}
        self.applied: list[tuple[Manifest, str]] = []
        self.status_patches: list[tuple[str, str, Manifest]] = []
        self.events: list[Manifest] = []
        self.lists = 0
        self.fail_apply_for: set[str] = set()

    def add_stack(self, body: Manifest, *, api: int = 2, workers: int = 1) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        self.deployments[(ns, f"{name}-api")] = deployment(f"{name}-api", ns, replicas=api)
        self.deployments[(ns, f"{name}-workers")] = deployment(
            f"{name}-workers", ns, replicas=workers
        )

    def replicas(self, namespace: str, name: str) -> int:
        return int(self.deployments[(namespace, name)]["spec"]["replicas"])

    @property
    def writes(self) -> int:
        return len(self.applied) + len(self.status_patches) + len(self.events)

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Manifest | None:
        if kind == "Secret":
            return self.secrets.get((namespace or "", name))
        if kind == "Deployment":
            return self.deployments.get((namespace or "", name))
        return None

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Manifest]:
        self.lists += 1
        return [copy.deepcopy(d) for (ns, _), d in self.deployments.items() if ns == namespace]

    async def apply(
        self, manifest: Manifest, *, field_manager: str, force: bool = True
    ) -> Manifest:
        meta = manifest["metadata"]
        if meta["name"] in self.fail_apply_for:
            raise RuntimeError(f"refused {meta['name']}")
        self.applied.append((copy.deepcopy(manifest), field_manager))
        live = self.deployments[(meta["namespace"], meta["name"])]
        live["spec"]["replicas"] = manifest["spec"]["replicas"]
        live["status"]["readyReplicas"] = manifest["spec"]["replicas"]
        return copy.deepcopy(live)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Manifest
    ) -> Manifest | None:
        self.status_patches.append((namespace, name, copy.deepcopy(status)))
        self.status[(namespace, name)] = _merge(self.status.get((namespace, name), {}), status)
        return {"status": copy.deepcopy(self.status[(namespace, name)])}

    async def create(self, manifest: Manifest) -> Manifest:
        self.events.append(copy.deepcopy(manifest))
        return manifest


def make_loop(kube: Any, reader: Any, clock: Any, **settings: Any) -> AutoscalingLoop:
    """A loop on the fakes, reading a Prometheus that is never called, ticking each second
    unless ``settings`` say otherwise."""
    ours = Settings(**{"prometheus_url": "http://127.0.0.1:9", "tick_seconds": 1.0, **settings})
    return AutoscalingLoop(kube=kube, settings=ours, reader=reader, clock=clock)


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeReader:
    """Signals the test sets per stack name: a backlog and a p95; None means missing."""

    def __init__(self, clock: Clock) -> None:
        from retention_operator.autoscaling import signals

        self._signals = signals
        self.clock = clock
        self.backlog: dict[str, int | None] = {}
        self.p95_ms: dict[str, float | None] = {}
        self.rps: dict[str, float] = {}
        self.queue_calls: list[dict[Any, Any]] = []
        self.latency_calls: list[dict[str, Any]] = []
        # The request rate's history per stack name, as a range query would give it.
        self.history: dict[str, list[tuple[float, float]]] = {}
        self.history_calls: list[tuple[dict[Any, Any], float, float]] = []
        # Passwords the fake Redis refuses; its endpoints land in refused_password.
        self.refuse: set[str] = set()
        self.refused_password: set[Any] = set()

    async def read_queues(self, queues: Any) -> dict[Any, Any]:
        self.queue_calls.append(dict(queues))
        self.refused_password = {e for e in queues if e.password in self.refuse}
        out = {}
        for endpoint, refs in queues.items():
            for ref in refs:
                if endpoint in self.refused_password:
                    out[ref] = self._signals.QueueReading(at=self.clock(), error="WRONGPASS")
                    continue
                backlog = self.backlog.get(ref.stack, 0)
                out[ref] = (
                    self._signals.QueueReading(at=self.clock(), error="redis down")
                    if backlog is None
                    else self._signals.QueueReading(
                        at=self.clock(),
                        backlog=backlog,
                        lag=backlog,
                        pending=0,
                        arrivals_total=0,
                        completed_total=0,
                    )
                )
        return out

    async def read_latency(self, stacks: Any) -> dict[Any, Any]:
        self.latency_calls.append(dict(stacks))
        out = {}
        for keys in stacks.values():
            for key in keys:
                p95 = self.p95_ms.get(key[1], 50.0)
                out[key] = (
                    self._signals.LatencyReading(at=self.clock(), error="prometheus down")
                    if p95 is None
                    else self._signals.LatencyReading(
                        at=self.clock(), p95_ms=p95, rps=self.rps.get(key[1], 100.0)
                    )
                )
        return out

    async def read_history(self, stacks: Any, *, start: float, end: float) -> dict[Any, Any]:
        self.history_calls.append((dict(stacks), start, end))
        return {
            key: [p for p in self.history[key[1]] if start <= p[0] <= end]
            for keys in stacks.values()
            for key in keys
            if key[1] in self.history
        }

    async def close(self) -> None:
        pass


@pytest.fixture
def make_stack() -> Any:
    return stack_body


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader(clock: Clock) -> FakeReader:
    return FakeReader(clock)


class QueueReader:
    """The real reader over real Redis for the queue-kind tests: each call is one read
    of one endpoint, and asserts that it took one round trip."""

    def __init__(self) -> None:
        from retention_operator.autoscaling.signals import SignalReader

        self.reader = SignalReader(timeout=5.0)

    async def __call__(self, endpoint: Any, *refs: Any) -> dict[Any, Any]:
        from retention_operator import telemetry

        counter = telemetry.AUTOSCALER_QUERIES.labels(source="redis")
        before = counter._value.get()
        readings = await self.reader.read_queues({endpoint: list(refs)})
        assert counter._value.get() - before == 1, "one round trip per endpoint"
        return readings


@pytest.fixture
async def read_queue() -> Any:
    """``await read_queue(endpoint, *refs)`` -> {ref: reading}, one round trip each call."""
    reader = QueueReader()
    yield reader
    await reader.reader.close()
