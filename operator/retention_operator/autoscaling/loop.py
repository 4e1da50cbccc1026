"""The autoscaling loop: one asyncio task per operator process, every stack per tick.

``main`` creates one :class:`AutoscalingLoop` at start-up and stops it at
clean-up; the stack event handler calls :meth:`AutoscalingLoop.track` on every
RetentionStack event and :meth:`AutoscalingLoop.forget` on deletion. Each tick:

1. read every signal in one batch per source (:mod:`.signals`: one pipeline per
   Redis endpoint, one PromQL query per Prometheus endpoint), and the scaled
   Deployments with one list per namespace;
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
import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pydantic

from retention_operator import names, telemetry
from retention_operator.autoscaling import leadership, report, targets
from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.limits import clamp
from retention_operator.autoscaling.policy import decide, is_paused
from retention_operator.autoscaling.rates import counter_rate
from retention_operator.autoscaling.samples import (
    ApiSample,
    Replicas,
    SignalHistory,
    WorkerSample,
)
from retention_operator.autoscaling.signals import (
    LatencyReading,
    QueueReading,
    QueueRef,
    RedisEndpoint,
    SignalReader,
    StackKey,
)
from retention_operator.autoscaling.state import Decision, PolicyState, direction_of
from retention_operator.builders import naming
from retention_operator.kube import KubeClient, KubeError, events
from retention_operator.model import RetentionStack, stack_from_body
from retention_operator.settings import Settings

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]
Component = Literal["api", "workers"]

# Drifting numbers in status are refreshed at most this often (see report.needs_write).
STATUS_REFRESH_SECONDS = 30.0
# A Redis password read from a Secret is reused this long before it is read again.
SECRET_TTL_SECONDS = 60.0
# Stacks decided (and written) at once; bounds the requests in flight to the API server.
CONCURRENCY = 16
REASON_SCALED_UP = "ScaledUp"
REASON_SCALED_DOWN = "ScaledDown"
REASON_METRICS_UNAVAILABLE = "MetricsUnavailable"
# Completion rate shown in status: over the policy's rate window.
JOBS_RATE_WINDOW_SECONDS = 15.0


@dataclass
class _ComponentMemory:
    """What one component of one stack carries from tick to tick."""

    history: SignalHistory[Any] = field(default_factory=SignalHistory)
    state: PolicyState | None = None
    missing_reported: bool = False
    last_scale_time: str | None = None


@dataclass
class _StackMemory:
    """A tracked stack: its latest object and what the loop remembers about it."""

    stack: RetentionStack
    annotations: dict[str, str]
    api: _ComponentMemory = field(default_factory=_ComponentMemory)
    workers: _ComponentMemory = field(default_factory=_ComponentMemory)
    written: Manifest = field(default_factory=dict)
    written_at: float = 0.0


@dataclass(frozen=True)
class TickReport:
    """What one tick did, for tests and the tick's log line."""

    stacks: int
    replica_writes: int
    status_writes: int
    errors: int
    seconds: float


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
        self._refresh = status_refresh_seconds
        self._stacks: dict[StackKey, _StackMemory] = {}
        self._secrets: dict[tuple[str, str, str], tuple[str | None, float]] = {}
        self._task: asyncio.Task[None] | None = None

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
        await self._reader.close()

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
        memory = self._stacks.get(key)
        if memory is None:
            written = report.owned(body.get("status"))
            # The stored status counts as just written, so numbers that merely
            # drifted while the operator was away wait a full refresh period.
            memory = self._stacks[key] = _StackMemory(
                stack=stack, annotations=annotations, written=written, written_at=self._clock()
            )
            # After a restart, carry on from what status says rather than from
            # nothing: a signal already reported missing is not reported again.
            stored = (written or {}).get("autoscaling") or {}
            for component, own in (("api", memory.api), ("workers", memory.workers)):
                seen = stored.get(component) or {}
                own.missing_reported = int(seen.get("failedTicks") or 0) > 0
                own.last_scale_time = seen.get("lastScaleTime")
        else:
            memory.stack, memory.annotations = stack, annotations

    def forget(self, namespace: str, name: str) -> None:
        """Drop a stack and everything remembered about it (no-op if unknown)."""
        self._stacks.pop((namespace, name), None)

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

    async def _leads(self) -> bool:
        """Whether this replica leads (always, without peering); a failed read counts as no."""
        name = self._settings.peering_name
        if name is None:
            return True
        namespaces = self._settings.namespaces
        try:
            if namespaces:
                peering = await self._kube.get("kopf.dev/v1", "KopfPeering", namespaces[0], name)
            else:
                peering = await self._kube.get("kopf.dev/v1", "ClusterKopfPeering", None, name)
        except (KubeError, httpx.HTTPError) as exc:
            logger.warning("cannot read peering %s, not autoscaling this tick: %s", name, exc)
            return False
        return leadership.leads(
            (peering or {}).get("status"),
            own_priority=self._settings.peering_priority,
            now=dt.datetime.fromtimestamp(self._clock(), dt.UTC),
        )

    async def tick(self) -> TickReport:
        """Read, decide and write for every tracked stack once; returns what it did.

        A standby replica (kopf peering, not the leader) does nothing.
        """
        started = time.monotonic()
        if not await self._leads():
            # A standby must not export what it last saw as a leader: the
            # alerts take the maximum over replicas.
            for namespace, name in self._stacks:
                telemetry.forget_stack(namespace, name)
            return TickReport(stacks=0, replica_writes=0, status_writes=0, errors=0, seconds=0.0)
        stacks = list(self._stacks.values())
        queues, queue_of = await self._queues(stacks)
        latency_of = self._latency_targets(stacks)
        queue_readings, latency_readings, deployments = await asyncio.gather(
            self._reader.read_queues(queues),
            self._reader.read_latency(_group_by_url(latency_of)),
            self._deployments({memory.stack.namespace for memory in stacks}),
        )
        now = self._clock()
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(memory: _StackMemory) -> _Outcome:
            async with semaphore:
                return await self._one_stack(
                    memory,
                    now=now,
                    queue=queue_readings.get(queue_of[_key(memory)]),
                    latency=latency_readings.get(_key(memory)),
                    has_prometheus=latency_of.get(_key(memory)) is not None,
                    deployments=deployments,
                )

        outcomes = await asyncio.gather(*(one(memory) for memory in stacks))
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
            {
                (memory.stack.namespace, ref.name, ref.key)
                for memory in stacks
                if (ref := targets.password_ref(memory.stack)) is not None
            }
        )
        grouped: dict[RedisEndpoint, list[QueueRef]] = defaultdict(list)
        queue_of: dict[StackKey, QueueRef] = {}
        for memory in stacks:
            stack = memory.stack
            ref = targets.password_ref(stack)
            password = None
            if ref is not None:
                password = self._secrets.get((stack.namespace, ref.name, ref.key), (None, 0.0))[0]
            queue = targets.queue_ref(stack)
            grouped[targets.redis_endpoint(stack, password=password)].append(queue)
            queue_of[_key(memory)] = queue
        return grouped, queue_of

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

    def _latency_targets(self, stacks: list[_StackMemory]) -> dict[StackKey, str | None]:
        default = self._settings.prometheus_url
        return {_key(m): targets.prometheus_url(m.stack, default=default) for m in stacks}

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
        queue: QueueReading | None,
        latency: LatencyReading | None,
        has_prometheus: bool,
        deployments: Mapping[tuple[str, str], Manifest],
    ) -> _Outcome:
        stack = memory.stack
        log = telemetry.stack_logger(logger, stack.namespace, stack.name)
        outcome = _Outcome()
        try:
            paused = is_paused(spec_paused=stack.spec.paused, annotations=memory.annotations)
            api_block = await self._component(
                memory,
                "api",
                now=now,
                paused=paused,
                deployment=deployments.get((stack.namespace, naming.api(stack.name))),
                sample=_api_sample(latency, now=now),
                missing_why=_latency_why(latency, has_prometheus=has_prometheus),
                outcome=outcome,
            )
            worker_block = await self._component(
                memory,
                "workers",
                now=now,
                paused=paused,
                deployment=deployments.get((stack.namespace, naming.workers(stack.name))),
                sample=_worker_sample(queue, now=now),
                missing_why=(queue.error if queue is not None else None) or "no queue reading",
                outcome=outcome,
                queue=queue,
            )
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
        component: Component,
        *,
        now: float,
        paused: bool,
        deployment: Manifest | None,
        sample: ApiSample | WorkerSample,
        missing_why: str,
        outcome: _Outcome,
        queue: QueueReading | None = None,
    ) -> Manifest | None:
        """Decide one component and write its replicas; return its status block.

        Returns None (and decides nothing) while its Deployment does not exist.
        """
        stack = memory.stack
        own = memory.api if component == "api" else memory.workers
        own.history.append(sample)
        if deployment is None:
            return None
        spec_replicas = deployment.get("spec", {}).get("replicas")
        replicas = Replicas(
            desired=int(1 if spec_replicas is None else spec_replicas),
            ready=int(deployment.get("status", {}).get("readyReplicas") or 0),
        )
        config: ApiPolicyConfig | WorkerPolicyConfig
        if component == "api":
            config = targets.api_config(stack)
            decision = decide(
                now=now,
                replicas=replicas,
                history=own.history,
                config=config,
                state=own.state,
                paused=paused,
            )
        else:
            config = targets.worker_config(stack)
            decision = decide(
                now=now,
                replicas=replicas,
                history=own.history,
                config=config,
                state=own.state,
                paused=paused,
            )
        own.state = decision.state
        if not config.enabled and not paused:
            decision = _within_bounds(decision, replicas=replicas, config=config)
        telemetry.AUTOSCALER_DECISIONS.labels(
            component=component, direction=decision.direction
        ).inc()
        telemetry.STACK_REPLICAS.labels(stack.namespace, stack.name, component).set(
            decision.desired
        )
        if paused:
            return None
        if decision.desired != replicas.desired:
            await self._scale(memory, component, decision)
            own.last_scale_time = report.timestamp(now)
            outcome.replica_writes += 1
        if config.enabled:
            await self._report_missing(memory, own, sample, config, now=now, why=missing_why)
        kind = report.decision_kind(
            decision, enabled=config.enabled, fallback_replicas=config.fallback_replicas
        )
        metrics = (
            report.api_metrics(p95_ms=sample.p95_ms, rps=sample.rps)
            if isinstance(sample, ApiSample)
            else _worker_metrics(own.history, queue)
        )
        return report.component_status(
            decision=decision, kind=kind, last_scale_time=own.last_scale_time, metrics=metrics
        )

    async def _scale(self, memory: _StackMemory, component: Component, decision: Decision) -> None:
        """Apply the new ``spec.replicas`` as the autoscaler and post ScaledUp/ScaledDown."""
        stack = memory.stack
        name = naming.api(stack.name) if component == "api" else naming.workers(stack.name)
        await self._kube.apply(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": stack.namespace},
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
        own: _ComponentMemory,
        sample: ApiSample | WorkerSample,
        config: ApiPolicyConfig | WorkerPolicyConfig,
        *,
        now: float,
        why: str,
    ) -> None:
        """Post MetricsUnavailable once when a signal goes missing; re-arm when it is back."""
        latest = own.history.latest()
        usable = (
            latest is not None
            and _has_values(latest)
            and now - latest.at <= config.stale_after_seconds
        )
        if usable:
            own.missing_reported = False
            return
        if own.missing_reported:
            return
        own.missing_reported = True
        stack = memory.stack
        what = "p95 latency" if isinstance(sample, ApiSample) else "queue backlog"
        message = f"No {what} for autoscaling, so replicas hold: {why}"
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


def _key(memory: _StackMemory) -> StackKey:
    return (memory.stack.namespace, memory.stack.name)


def _group_by_url(latency_of: Mapping[StackKey, str | None]) -> dict[str, list[StackKey]]:
    grouped: dict[str, list[StackKey]] = defaultdict(list)
    for key, url in latency_of.items():
        if url is not None:
            grouped[url].append(key)
    return grouped


def _secret_value(secret: Manifest | None, item: str) -> str | None:
    """The decoded value of ``item`` in a Secret; None if the Secret or key is absent."""
    encoded = ((secret or {}).get("data") or {}).get(item)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _api_sample(reading: LatencyReading | None, *, now: float) -> ApiSample:
    return reading.sample() if reading is not None else ApiSample(at=now, p95_ms=None, rps=None)


def _worker_sample(reading: QueueReading | None, *, now: float) -> WorkerSample:
    if reading is None:
        return WorkerSample(at=now, backlog=None, arrivals_total=None, completed_total=None)
    return reading.sample()


def _latency_why(reading: LatencyReading | None, *, has_prometheus: bool) -> str:
    if not has_prometheus:
        return (
            "no Prometheus is configured (spec.api.autoscaling.prometheusUrl or the operator's "
            "RETENTION_PROMETHEUS_URL)"
        )
    if reading is None or reading.error is None:
        return "the latest Prometheus sample is too old"
    return reading.error


def _has_values(sample: ApiSample | WorkerSample) -> bool:
    if isinstance(sample, ApiSample):
        return sample.p95_ms is not None and sample.rps is not None
    return sample.backlog is not None


def _within_bounds(
    decision: Decision, *, replicas: Replicas, config: ApiPolicyConfig | WorkerPolicyConfig
) -> Decision:
    """With autoscaling disabled, only bring replicas within [min, max]."""
    desired = clamp(replicas.desired, low=config.min_replicas, high=config.max_replicas)
    direction = direction_of(current=replicas.desired, desired=desired)
    if direction == "none":
        return decision
    reason = (
        f"Scaled to {desired} replicas from {replicas.desired}: autoscaling is disabled, "
        f"and replicas are kept within [{config.min_replicas}, {config.max_replicas}]."
    )
    return Decision(
        desired=desired,
        reason=reason,
        direction=direction,
        recommendation=None,
        state=decision.state,
    )


def _worker_metrics(history: SignalHistory[WorkerSample], queue: QueueReading | None) -> Manifest:
    """The workers' status fields from this tick's reading and the completion rate."""
    jobs = counter_rate(
        history,
        lambda s: s.completed_total,
        window=JOBS_RATE_WINDOW_SECONDS,
    )
    if queue is None or queue.backlog is None:
        return report.worker_metrics(backlog=None, lag=None, pending=None, jobs_per_second=jobs)
    return report.worker_metrics(
        backlog=queue.backlog, lag=queue.lag, pending=queue.pending, jobs_per_second=jobs
    )
