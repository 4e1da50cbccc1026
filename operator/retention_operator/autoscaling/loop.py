"""The autoscaling loop: one asyncio task per operator process, every stack per tick.

``main`` creates one :class:`AutoscalingLoop` at start-up and stops it at
clean-up; the stack event handler calls :meth:`AutoscalingLoop.track` on every
RetentionStack event and :meth:`AutoscalingLoop.forget` on deletion. Each tick:

1. read every signal in one batch per source (:mod:`.signals`: one pipeline per
   Redis endpoint, one PromQL query per Prometheus endpoint), and the scaled
   Deployments with one list per namespace; at a stack's first tick its API's
   request rate of the last four weeks is wanted for its forecast, which
   :mod:`.history` reads and learns beside the ticks, a batch of stacks at a time;
2. decide each stack's API and workers with the pure policy (:func:`.policy.decide`),
   carrying each component's signal history and policy state between ticks;
3. write ``spec.replicas`` (server-side apply, field manager
   ``retention-autoscaler``) only when it changes, post ScaledUp/ScaledDown and
   MetricsUnavailable Events, and merge-patch ``status.autoscaling``,
   ``status.p95Milliseconds`` and ``status.backlog`` only when they changed.

A paused stack (``spec.paused`` or the autoscaling-paused annotation) gets no
writes at all. One stack's failure is logged with the stack and never stops the
others or the loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx
import pydantic
from prometheus_client import Counter, Gauge

from retention_operator import names, telemetry
from retention_operator.autoscaling import forecast, leadership, report, targets
from retention_operator.autoscaling.components import API, WORKERS, Component, Readings
from retention_operator.autoscaling.history import HistoryLearner
from retention_operator.autoscaling.policy import is_paused
from retention_operator.autoscaling.samples import ApiSample, Replicas, SignalHistory, WorkerSample
from retention_operator.autoscaling.signals import (
    LatencySource,
    QueueRef,
    RedisEndpoint,
    SignalReader,
    StackKey,
)
from retention_operator.autoscaling.state import Decision, PolicyState
from retention_operator.kube import KubeClient, KubeError, events
from retention_operator.model import RetentionStack, stack_from_body
from retention_operator.settings import Settings

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]
S = TypeVar("S", ApiSample, WorkerSample)

# Drifting numbers in status are refreshed at most this often (see report.needs_write).
STATUS_REFRESH_SECONDS = 30.0
# A Redis password read from a Secret is reused this long before it is read again.
SECRET_TTL_SECONDS = 60.0
# Stacks decided (and written) at once; bounds the requests in flight to the API server.
CONCURRENCY = 16
REASON_SCALED_UP = "ScaledUp"
REASON_SCALED_DOWN = "ScaledDown"
REASON_METRICS_UNAVAILABLE = "MetricsUnavailable"


@dataclass
class _ComponentMemory(Generic[S]):
    """What one component of one stack carries from tick to tick."""

    history: SignalHistory[S] = field(default_factory=SignalHistory)
    state: PolicyState | None = None
    missing_reported: bool = False
    last_scale_time: str | None = None
    # Whether the forecast's history was wanted of Prometheus (once, at the first tick).
    history_read: bool = False
    # The component's series of retention_stack_replicas, looked up once (a thousand
    # stacks' label lookups each tick cost more than deciding them); dropped whenever
    # telemetry.forget_stack removes the series, so that it is made again.
    replicas_gauge: Gauge | None = None


@dataclass
class _StackMemory:
    """A tracked stack: its latest object and what the loop remembers about it."""

    stack: RetentionStack
    targets: targets.Targets
    """Derived from ``stack`` when it was tracked (one owner: the spec)."""
    annotations: dict[str, str]
    api: _ComponentMemory[ApiSample] = field(default_factory=_ComponentMemory)
    workers: _ComponentMemory[WorkerSample] = field(default_factory=_ComponentMemory)
    written: Manifest = field(default_factory=dict)
    written_at: float = 0.0
    dead_letters_gauge: Gauge | None = None


@dataclass(frozen=True)
class TickReport:
    """What one tick did, for tests and the tick's log line."""

    stacks: int
    replica_writes: int
    status_writes: int
    errors: int
    seconds: float


@dataclass(frozen=True, slots=True)
class _Tick:
    """What every component of a stack sees this tick."""

    now: float
    paused: bool
    readings: Readings
    deployments: Mapping[tuple[str, str], Manifest]


@dataclass
class _Outcome:
    replica_writes: int = 0
    status_writes: int = 0
    errors: int = 0


class AutoscalingLoop:
    """Batched autoscaling of every tracked stack; see the module docstring."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        settings: Settings,
        reader: SignalReader | None = None,
        clock: Callable[[], float] = time.time,
        status_refresh_seconds: float = STATUS_REFRESH_SECONDS,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._clock = clock
        # A round trip must end well within a tick, so that ticks do not pile up.
        timeout = max(0.5, min(3.0, settings.tick_seconds * 0.8))
        self._reader = reader or SignalReader(timeout=timeout, clock=clock)
        # The history's range queries run beside a tick's reads: clients of their own,
        # unless a reader was given (the tests' fake).
        self._history_reader = reader or SignalReader(timeout=timeout, clock=clock)
        self.history = HistoryLearner(
            reader=self._history_reader, clock=clock, seed=self._seed_forecast
        )
        self._refresh = status_refresh_seconds
        self._stacks: dict[StackKey, _StackMemory] = {}
        self._secrets: dict[tuple[str, str, str], tuple[str | None, float]] = {}
        self._task: asyncio.Task[None] | None = None
        self._leadership = leadership.Leadership(kube, settings, clock=clock)

    # --- Interface used by main and the handlers ------------------------------------------

    def start(self) -> None:
        """Start the loop's task on the running event loop (no-op if it runs)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="retention-autoscaler"
            )

    async def stop(self) -> None:
        """Cancel the task, wait for it to end and close the signal clients."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.history.stop()
        await self._reader.close()
        if self._history_reader is not self._reader:
            await self._history_reader.close()

    def track(self, body: Mapping[str, Any]) -> None:
        """Remember the latest version of a stack; a body that does not parse is ignored."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if meta.get("deletionTimestamp"):
            self.forget(*key)
            return
        try:
            stack = stack_from_body(dict(body))
        except pydantic.ValidationError as exc:
            log = telemetry.stack_logger(logger, *key)
            log.warning("not autoscaling: the spec does not parse: %s", exc.errors()[:3])
            self._stacks.pop(key, None)
            return
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        derived = targets.derive(stack, default_prometheus=self._settings.prometheus_url)
        memory = self._stacks.get(key)
        if memory is None:
            written = report.owned(body.get("status"))
            # The stored status counts as just written, so numbers that merely
            # drifted while the operator was away wait a full refresh period.
            memory = self._stacks[key] = _StackMemory(
                stack=stack,
                targets=derived,
                annotations=annotations,
                written=written,
                written_at=self._clock(),
            )
            # After a restart, carry on from what status says rather than from
            # nothing: a signal already reported missing is not reported again.
            stored = (written or {}).get("autoscaling") or {}
            for name, own in (("api", memory.api), ("workers", memory.workers)):
                seen = stored.get(name) or {}
                own.missing_reported = int(seen.get("failedTicks") or 0) > 0
                own.last_scale_time = seen.get("lastScaleTime")
        else:
            memory.stack, memory.targets, memory.annotations = stack, derived, annotations

    def forget(self, namespace: str, name: str) -> None:
        """Drop a stack and everything remembered about it (no-op if unknown)."""
        self._stacks.pop((namespace, name), None)
        self.history.forget((namespace, name))

    @property
    def tracked(self) -> list[StackKey]:
        """The (namespace, name) of every tracked stack."""
        return list(self._stacks)

    # --- The loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:
                # A tick that fails as a whole (a bug, an unforeseen error) must not
                # end autoscaling for every stack: log it, try again next tick.
                logger.exception("autoscaling tick failed")
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.0, self._settings.tick_seconds - elapsed))

    async def leads(self) -> bool:
        """Whether this operator replica leads (the read pool loop asks the same question)."""
        return await self._leadership.leads()

    async def tick(self) -> TickReport:
        """Read, decide and write for every tracked stack once; returns what it did.

        A standby replica (kopf peering, not the leader) does nothing.
        """
        started = time.monotonic()
        if not await self._leadership.leads():
            # A standby must not export what it last saw as a leader: the
            # alerts take the maximum over replicas.
            for (namespace, name), memory in self._stacks.items():
                telemetry.forget_stack(namespace, name)
                memory.api.replicas_gauge = memory.workers.replicas_gauge = None
                memory.dead_letters_gauge = None
            return TickReport(stacks=0, replica_writes=0, status_writes=0, errors=0, seconds=0.0)
        stacks = list(self._stacks.values())
        queues, queue_of = await self._queues(stacks)
        latency_of = self._latency_targets(stacks)
        self._want_forecast_history(stacks, latency_of)
        queue_readings, latency_readings, deployments = await asyncio.gather(
            self._reader.read_queues(queues),
            self._reader.read_latency(_group_by_source(latency_of)),
            self._deployments({memory.stack.namespace for memory in stacks}),
        )
        self._forget_refused_passwords(stacks)
        now = self._clock()
        pending = iter(stacks)
        outcomes: list[_Outcome] = []

        async def worker() -> None:
            # CONCURRENCY workers take the stacks in turn (a task per stack would
            # cost more than deciding a stack that has nothing to write).
            for memory in pending:
                key = _key(memory)
                readings = Readings(
                    queue=queue_readings.get(queue_of[key]),
                    latency=latency_readings.get(key),
                    has_prometheus=latency_of.get(key) is not None,
                )
                outcomes.append(
                    await self._one_stack(
                        memory, now=now, readings=readings, deployments=deployments
                    )
                )

        await asyncio.gather(*(worker() for _ in range(min(CONCURRENCY, len(stacks)))))
        seconds = time.monotonic() - started
        telemetry.AUTOSCALER_TICK.observe(seconds)
        return TickReport(
            stacks=len(stacks),
            replica_writes=sum(o.replica_writes for o in outcomes),
            status_writes=sum(o.status_writes for o in outcomes),
            errors=sum(o.errors for o in outcomes),
            seconds=seconds,
        )

    # --- Reading ---------------------------------------------------------------------------

    async def _queues(
        self, stacks: list[_StackMemory]
    ) -> tuple[dict[RedisEndpoint, list[QueueRef]], dict[StackKey, QueueRef]]:
        """Group the stacks' queues by Redis endpoint (reading passwords as needed)."""
        await self._refresh_secrets(
            {key for memory in stacks if (key := _password_key(memory)) is not None}
        )
        grouped: dict[RedisEndpoint, list[QueueRef]] = defaultdict(list)
        queue_of: dict[StackKey, QueueRef] = {}
        for memory in stacks:
            queue = memory.targets.queue
            grouped[memory.targets.endpoint(self._password(memory))].append(queue)
            queue_of[(queue.namespace, queue.stack)] = queue
        return grouped, queue_of

    def _forget_refused_passwords(self, stacks: list[_StackMemory]) -> None:
        """Forget the cached password of each stack whose Redis refused it, so that the
        next tick reads its Secret again instead of reusing it for SECRET_TTL_SECONDS: a
        stack deleted and applied again gets a new managed Redis password under the same
        Secret name."""
        refused = self._reader.refused_password
        if not refused:
            return
        for memory in stacks:
            key = _password_key(memory)
            if key is not None and memory.targets.endpoint(self._password(memory)) in refused:
                self._secrets.pop(key, None)

    def _password(self, memory: _StackMemory) -> str | None:
        """The stack's Redis password as last read from its Secret; None without one."""
        key = _password_key(memory)
        return None if key is None else self._secrets.get(key, (None, 0.0))[0]

    async def _refresh_secrets(self, wanted: set[tuple[str, str, str]]) -> None:
        """Read the password Secrets not read within SECRET_TTL_SECONDS; forget unused ones."""
        now = time.monotonic()
        for key in set(self._secrets) - wanted:
            del self._secrets[key]
        stale = [
            k for k in wanted if now - self._secrets.get(k, (None, -1e9))[1] > SECRET_TTL_SECONDS
        ]
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def read(key: tuple[str, str, str]) -> None:
            namespace, name, item = key
            async with semaphore:
                try:
                    secret = await self._kube.get("v1", "Secret", namespace, name)
                except (KubeError, httpx.HTTPError) as exc:
                    log = telemetry.stack_logger(logger, namespace, name)
                    log.warning("cannot read the Redis password Secret %s: %s", name, exc)
                    return
            self._secrets[key] = (_secret_value(secret, item), now)

        await asyncio.gather(*(read(key) for key in stale))

    def _want_forecast_history(
        self, stacks: list[_StackMemory], latency_of: Mapping[StackKey, LatencySource | None]
    ) -> None:
        """At a stack's first tick (the operator's start, a new stack) its API's request
        rate of the last :data:`.forecast.KEPT_DAYS` days is wanted from Prometheus, to
        seed its forecast (:mod:`.history` reads and learns it beside the ticks); from
        then on every tick's reading adds to it. Wanted once per stack: a failed read
        leaves the forecast to learn from the ticks."""
        for memory in stacks:
            own = memory.api
            if own.history_read or own.state is not None:
                continue
            own.history_read = True
            source = latency_of.get(_key(memory))
            if source is not None and memory.targets.api.forecast:
                self.history.want(_key(memory), source)

    def _seed_forecast(self, key: StackKey, learned: forecast.Forecast) -> bool:
        """Install a forecast learned from history, if the stack is still tracked with
        the forecast on. It replaces what the ticks taught meanwhile: the history was
        read up to the moment of the read, so it holds those minutes too."""
        memory = self._stacks.get(key)
        if memory is None or not memory.targets.api.forecast:
            return False
        own = memory.api
        own.state = (
            PolicyState(forecast=learned)
            if own.state is None
            else replace(own.state, forecast=learned)
        )
        return True

    def _latency_targets(self, stacks: list[_StackMemory]) -> dict[StackKey, LatencySource | None]:
        return {_key(m): m.targets.latency for m in stacks}

    async def _deployments(self, namespaces: set[str]) -> dict[tuple[str, str], Manifest]:
        """The stacks' Deployments by (namespace, name), one list per namespace.

        A namespace whose list fails is left out (its stacks skip this tick).
        """

        async def one(namespace: str) -> list[Manifest]:
            try:
                return await self._kube.list(
                    "apps/v1", "Deployment", namespace, label_selector=names.LABEL_STACK
                )
            except (KubeError, httpx.HTTPError) as exc:
                logger.warning("cannot list Deployments in %s: %s", namespace, exc)
                return []

        found: dict[tuple[str, str], Manifest] = {}
        for namespace, items in zip(
            namespaces, await asyncio.gather(*(one(ns) for ns in namespaces)), strict=True
        ):
            for item in items:
                found[(namespace, item.get("metadata", {}).get("name", ""))] = item
        return found

    # --- Deciding and writing --------------------------------------------------------------

    async def _one_stack(
        self,
        memory: _StackMemory,
        *,
        now: float,
        readings: Readings,
        deployments: Mapping[tuple[str, str], Manifest],
    ) -> _Outcome:
        stack = memory.stack
        log = telemetry.stack_logger(logger, stack.namespace, stack.name)
        outcome = _Outcome()
        try:
            paused = is_paused(spec_paused=stack.spec.paused, annotations=memory.annotations)
            tick = _Tick(now=now, paused=paused, readings=readings, deployments=deployments)
            _export_dead_letters(memory, readings)
            api_block = await self._component(memory, API, memory.api, tick, outcome)
            worker_block = await self._component(memory, WORKERS, memory.workers, tick, outcome)
            if not paused and (api_block is not None or worker_block is not None):
                wrote = await self._write_status(
                    memory, now=now, api=api_block, workers=worker_block
                )
                outcome.status_writes += int(wrote)
        except Exception as exc:
            # One stack's failure (an API server refusal, a bug in one spec's path)
            # must not stop the others: count it, log it with the stack, go on.
            outcome.errors += 1
            log.exception("autoscaling this stack failed: %s", exc)
        return outcome

    async def _component(
        self,
        memory: _StackMemory,
        component: Component[S],
        own: _ComponentMemory[S],
        tick: _Tick,
        outcome: _Outcome,
    ) -> Manifest | None:
        """Decide one component and carry the Decision out; return its status block.

        Returns None (and decides nothing) while its Deployment does not exist.
        """
        stack = memory.stack
        sample = component.sample(tick.readings, now=tick.now)
        own.history.append(sample)
        deployment = tick.deployments.get((stack.namespace, component.deployment(stack)))
        if deployment is None:
            return None
        spec_replicas = deployment.get("spec", {}).get("replicas")
        replicas = Replicas(
            desired=int(1 if spec_replicas is None else spec_replicas),
            ready=int(deployment.get("status", {}).get("readyReplicas") or 0),
        )
        decision = component.decide(
            now=tick.now,
            replicas=replicas,
            history=own.history,
            targets=memory.targets,
            state=own.state,
            paused=tick.paused,
        )
        own.state = decision.state
        _decisions(component.name, decision.direction).inc()
        if own.replicas_gauge is None:
            own.replicas_gauge = telemetry.STACK_REPLICAS.labels(
                stack.namespace, stack.name, component.name
            )
        own.replicas_gauge.set(decision.desired)
        if decision.kind == "Paused":
            return None
        if decision.desired != replicas.desired:
            await self._scale(memory, component, decision)
            own.last_scale_time = report.timestamp(tick.now)
            outcome.replica_writes += 1
        if decision.kind != "Disabled":
            await self._report_missing(memory, component, own, decision, tick.readings)
        metrics = component.metrics(sample=sample, history=own.history, readings=tick.readings)
        return report.component_status(
            decision=decision, last_scale_time=own.last_scale_time, metrics=metrics
        )

    async def _scale(
        self, memory: _StackMemory, component: Component[S], decision: Decision
    ) -> None:
        """Apply the new ``spec.replicas`` as the autoscaler and post ScaledUp/ScaledDown."""
        stack = memory.stack
        await self._kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": component.deployment(stack), "namespace": stack.namespace},
                "spec": {"replicas": decision.desired},
            },
            field_manager=names.AUTOSCALER_FIELD_MANAGER,
        )
        telemetry.stack_logger(logger, stack.namespace, stack.name).info(decision.reason)
        await events.post(
            self._kube,
            namespace=stack.namespace,
            name=stack.name,
            uid=stack.metadata.uid,
            type_="Normal",
            reason=REASON_SCALED_UP if decision.direction == "up" else REASON_SCALED_DOWN,
            message=decision.reason,
        )

    async def _report_missing(
        self,
        memory: _StackMemory,
        component: Component[S],
        own: _ComponentMemory[S],
        decision: Decision,
        readings: Readings,
    ) -> None:
        """Post MetricsUnavailable once when a signal goes missing; re-arm when it is back."""
        if decision.missing is None:
            own.missing_reported = False
            return
        if own.missing_reported:
            return
        own.missing_reported = True
        stack = memory.stack
        why = component.missing_why(readings)
        message = f"No {component.signal} for autoscaling, so replicas hold: {why}"
        telemetry.stack_logger(logger, stack.namespace, stack.name).warning(message)
        await events.post(
            self._kube,
            namespace=stack.namespace,
            name=stack.name,
            uid=stack.metadata.uid,
            type_="Warning",
            reason=REASON_METRICS_UNAVAILABLE,
            message=message,
        )

    async def _write_status(
        self,
        memory: _StackMemory,
        *,
        now: float,
        api: Manifest | None,
        workers: Manifest | None,
    ) -> bool:
        """Merge-patch the loop's status keys if they changed enough (report.needs_write).

        Returns whether a patch was sent.
        """
        patch = report.status_patch(api=api, workers=workers)
        if not report.needs_write(
            memory.written, patch, since_last=now - memory.written_at, refresh=self._refresh
        ):
            return False
        stack = memory.stack
        stored = await self._kube.patch_status(
            names.API_VERSION, names.KIND, stack.namespace, stack.name, patch
        )
        if stored is not None:
            memory.written = report.owned(stored.get("status"))
            memory.written_at = now
        telemetry.STACK_BACKLOG.labels(stack.namespace, stack.name).set(
            float(patch.get("backlog") or 0)
        )
        p95 = patch.get("p95Milliseconds")
        if p95 is not None:
            telemetry.STACK_API_P95.labels(stack.namespace, stack.name).set(p95 / 1000.0)
        return True


# --- Small pure helpers ------------------------------------------------------------------------


@functools.cache
def _decisions(component: str, direction: str) -> Counter:
    """The series of retention_autoscaler_decisions_total (never removed), looked up once."""
    return telemetry.AUTOSCALER_DECISIONS.labels(component=component, direction=direction)


def _export_dead_letters(memory: _StackMemory, readings: Readings) -> None:
    """Set the stack's dead-letter gauge from this tick's queue reading, when it has one."""
    queue = readings.queue
    if queue is None or queue.dead_letters is None:
        return
    if memory.dead_letters_gauge is None:
        stack = memory.stack
        memory.dead_letters_gauge = telemetry.STACK_DEAD_LETTERS.labels(stack.namespace, stack.name)
    memory.dead_letters_gauge.set(queue.dead_letters)


def _key(memory: _StackMemory) -> StackKey:
    return (memory.stack.namespace, memory.stack.name)


def _group_by_source(
    latency_of: Mapping[StackKey, LatencySource | None],
) -> dict[LatencySource, list[StackKey]]:
    grouped: dict[LatencySource, list[StackKey]] = defaultdict(list)
    for key, source in latency_of.items():
        if source is not None:
            grouped[source].append(key)
    return grouped


def _password_key(memory: _StackMemory) -> tuple[str, str, str] | None:
    """(namespace, Secret, key) of the stack's Redis password; None when Redis has no auth."""
    ref = memory.targets.password
    return None if ref is None else (memory.stack.namespace, ref.name, ref.key)


def _secret_value(secret: Manifest | None, item: str) -> str | None:
    """The decoded value of ``item`` in a Secret; None if the Secret or key is absent."""
    encoded = ((secret or {}).get("data") or {}).get(item)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
