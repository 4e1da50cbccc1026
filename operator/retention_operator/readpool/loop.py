"""The read pool loop: one task per operator process, every stack with read replicas per tick.

``main`` starts one :class:`ReadPoolLoop`; the stack event handler calls
:meth:`ReadPoolLoop.track` and :meth:`ReadPoolLoop.forget`. Each tick, for
each stack with ``spec.pgbouncer.readReplicas`` (and not paused):

1. read the primary's WAL position, then each replica's replayed position,
   straight from the servers with the stack's credentials and TLS settings;
2. turn them into a lag (:class:`.membership.LagTracker`) and a verdict
   (:func:`.membership.decide`);
3. when a replica leaves or joins: post ``ReplicaLeftReadPool`` (Warning) or
   ``ReplicaJoinedReadPool`` (Normal), merge-patch ``status.pgbouncer``, and
   apply the read pool's ConfigMap (rendered from that status by the same
   builder the reconciler uses). PgBouncer's start script sees the new
   config and reloads (SIGHUP): no pod restarts, no client connection drops.

Lag values that merely drift are written to status at most every
``STATUS_REFRESH_SECONDS``; they are exported every tick as the metric
``retention_operator_read_replica_lag_seconds``. A standby operator replica
(kopf peering) does nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pydantic

from retention_operator import names, telemetry
from retention_operator.builders import pgbouncer
from retention_operator.builders.database import server_sslmode
from retention_operator.builders.ownership import owner_reference, set_owner_reference
from retention_operator.kube import KubeClient, KubeError, events
from retention_operator.model import RetentionStack, stack_from_body
from retention_operator.readpool import lag
from retention_operator.readpool.membership import LagTracker, decide
from retention_operator.reconcile import apply, database

logger = logging.getLogger(__name__)

StackKey = tuple[str, str]
ReplicaKey = tuple[str, int]
Manifest = dict[str, Any]

REASON_LEFT = "ReplicaLeftReadPool"
REASON_JOINED = "ReplicaJoinedReadPool"
STATUS_REFRESH_SECONDS = 30.0
# Passwords and CAs read from the API server are reused this long (and re-read
# at once after a failed connection).
SECRET_TTL_SECONDS = 60.0
CONCURRENCY = 16


@dataclass
class _ReplicaMemory:
    tracker: LagTracker = field(default_factory=LagTracker)
    in_pool: bool = False
    lag: float | None = None
    message: str = "not measured yet"
    since: str | None = None


@dataclass
class _StackMemory:
    stack: RetentionStack
    uid: str
    replicas: dict[ReplicaKey, _ReplicaMemory] = field(default_factory=dict)
    written: list[Manifest] | None = None
    written_at: float = 0.0
    ensured_at: float = 0.0
    applied: str | None = None
    """Hash of the read pool ConfigMap this loop last applied."""
    secret: tuple[str | None, str | None, float] | None = None
    """(password, CA PEM, read at)."""


def _now_text() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReadPoolLoop:
    """Measures read replicas' lag and keeps each stack's read pool to those within bounds."""

    def __init__(
        self,
        *,
        kube: KubeClient,
        tick_seconds: float = 0.5,
        leads: Callable[[], Awaitable[bool]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        status_refresh_seconds: float = STATUS_REFRESH_SECONDS,
    ) -> None:
        self._kube = kube
        self._tick = tick_seconds
        self._leads = leads
        self._clock = clock
        self._refresh = status_refresh_seconds
        self._stacks: dict[StackKey, _StackMemory] = {}
        self._conns = lag.Connections()
        self._task: asyncio.Task[None] | None = None

    # --- Interface used by main and the handlers ------------------------------------------

    def start(self) -> None:
        """Start the loop's task on the running event loop (no-op if it runs)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="retention-read-pool"
            )

    async def stop(self) -> None:
        """Cancel the task and close every database connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._conns.close()

    def track(self, body: Mapping[str, Any]) -> None:
        """Remember the latest version of a stack; stacks without read replicas are dropped."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        try:
            stack = stack_from_body(dict(body))
        except pydantic.ValidationError:
            self._stacks.pop(key, None)
            return
        if meta.get("deletionTimestamp") or not stack.spec.pgbouncer.read_replicas:
            self._stacks.pop(key, None)
            return
        memory = self._stacks.get(key)
        if memory is None:
            memory = self._stacks[key] = _StackMemory(stack=stack, uid=str(meta.get("uid", "")))
            # After a restart, membership carries on from status: nothing moves
            # (no Event, no reload) until a measurement says so.
            stored = stack.status.pgbouncer if stack.status is not None else None
            for entry in stored.read_replicas if stored is not None else []:
                memory.replicas[(entry.host, entry.port)] = _ReplicaMemory(
                    in_pool=entry.in_read_pool,
                    message=entry.message,
                    since=entry.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ")
                    if entry.last_transition_time
                    else None,
                )
            memory.written = (
                [
                    e.model_dump(by_alias=True, exclude_none=True, mode="json")
                    for e in stored.read_replicas
                ]
                if stored is not None
                else None
            )
            memory.written_at = self._clock()
        else:
            memory.stack = stack

    def forget(self, namespace: str, name: str) -> None:
        """Drop a stack (no-op if unknown)."""
        self._stacks.pop((namespace, name), None)

    # --- The loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:
                logger.exception("read pool tick failed")
            await asyncio.sleep(max(0.0, self._tick - (time.monotonic() - started)))

    async def tick(self) -> None:
        """Measure and judge every tracked stack once (nothing on a standby replica)."""
        if self._leads is not None and not await self._leads():
            return
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(key: StackKey, memory: _StackMemory) -> None:
            async with gate:
                try:
                    await self._stack_tick(key, memory)
                except Exception:
                    telemetry.stack_logger(logger, *key).exception("read pool check failed")

        await asyncio.gather(
            *(one(k, m) for k, m in list(self._stacks.items()) if not m.stack.spec.paused)
        )

    async def _credentials(
        self, memory: _StackMemory, *, fresh: bool
    ) -> tuple[str | None, str | None]:
        cached = memory.secret
        if cached is not None and not fresh and self._clock() - cached[2] < SECRET_TTL_SECONDS:
            return cached[0], cached[1]
        stack = memory.stack
        creds = stack.spec.pgbouncer.credentials_secret_ref
        secret = await self._kube.get("v1", "Secret", stack.namespace, creds.name)
        password = _decoded((secret or {}).get("data", {}).get(creds.password_key))
        ca = await database.ca_bundle(self._kube, stack)
        ca_pem = ca if isinstance(ca, str) else None
        memory.secret = (password, ca_pem, self._clock())
        return password, ca_pem

    async def _stack_tick(self, key: StackKey, memory: _StackMemory) -> None:
        stack = memory.stack
        spec = stack.spec.pgbouncer
        failed_before = any(
            r.message.startswith("cannot be read") for r in memory.replicas.values()
        )
        password, ca_pem = await self._credentials(memory, fresh=failed_before)
        ssl_arg = database.asyncpg_ssl(server_sslmode(spec), ca_pem)
        db = spec.database
        try:
            primary = await lag.primary_lsn(
                self._conns,
                (db.host, db.port, db.name, db.user),
                password=password,
                ssl_arg=ssl_arg,
            )
        except Exception as exc:
            # Without the primary's position no lag can be told: membership stays.
            telemetry.stack_logger(logger, *key).warning(
                "read pool: cannot read the primary's WAL position: %s", type(exc).__name__
            )
            memory.secret = None
            return
        readings = await asyncio.gather(
            *(
                lag.replica_reading(
                    self._conns,
                    (r.host, r.port, db.name, db.user),
                    password=password,
                    ssl_arg=ssl_arg,
                )
                for r in spec.read_replicas
            )
        )
        now = self._clock()
        moved: list[tuple[ReplicaKey, _ReplicaMemory]] = []
        for replica, reading in zip(spec.read_replicas, readings, strict=True):
            rkey = (replica.host, replica.port)
            mem = memory.replicas.setdefault(rkey, _ReplicaMemory())
            if reading.replay_lsn is None:
                mem.tracker.reset()
                mem.lag = None
                error = f"replica {replica.host}:{replica.port} {reading.error}"
            else:
                mem.lag = mem.tracker.observe(
                    now=now, primary_lsn=primary, replay_lsn=reading.replay_lsn
                )
                error = None
            verdict = decide(
                was_in_pool=mem.in_pool, lag=mem.lag, error=error, max_lag=spec.max_lag_seconds
            )
            mem.message = verdict.message
            if verdict.in_pool != mem.in_pool or mem.since is None:
                if verdict.in_pool != mem.in_pool:
                    moved.append((rkey, mem))
                mem.in_pool = verdict.in_pool
                mem.since = _now_text()
            _export(key, rkey, mem)
        # Replicas removed from the spec are forgotten.
        wanted = {(r.host, r.port) for r in spec.read_replicas}
        for rkey in [k for k in memory.replicas if k not in wanted]:
            memory.replicas.pop(rkey)
        await self._write(key, memory, moved=moved, now=now)

    async def _write(
        self,
        key: StackKey,
        memory: _StackMemory,
        *,
        moved: list[tuple[ReplicaKey, _ReplicaMemory]],
        now: float,
    ) -> None:
        namespace, name = key
        entries = _status_entries(memory)
        changed = memory.written is None or [_shape(e) for e in entries] != [
            _shape(e) for e in memory.written
        ]
        drifted = entries != memory.written and now - memory.written_at >= self._refresh
        # The pool changes first; status and Events then report what was done.
        await self._ensure_config(memory, entries, now=now)
        if changed or drifted:
            patch = {"pgbouncer": {"readReplicas": entries}}
            await self._kube.patch_status(names.API_VERSION, names.KIND, namespace, name, patch)
            memory.written, memory.written_at = entries, now
        for (host, port), mem in moved:
            reason = REASON_JOINED if mem.in_pool else REASON_LEFT
            type_: events.EventType = "Normal" if mem.in_pool else "Warning"
            message = (
                f"read replica {host}:{port} joined the read pool (lag {mem.lag:.1f}s)"
                if mem.in_pool
                else f"read replica {host}:{port} left the read pool: {mem.message}"
            )
            telemetry.stack_logger(logger, namespace, name).info("%s", message)
            await events.post(
                self._kube,
                namespace=namespace,
                name=name,
                uid=memory.uid,
                type_=type_,
                reason=reason,
                message=message,
            )

    async def _ensure_config(
        self, memory: _StackMemory, entries: list[Manifest], *, now: float
    ) -> None:
        """Apply the read pool's ConfigMap, rendered from this status, when it changed.

        After the reconciler created it, this loop is its only writer: it follows
        both the membership and the spec (a changed pool size, say). Unchanged,
        it is checked against the live object every ``STATUS_REFRESH_SECONDS``.
        """
        stack = memory.stack
        body = stack.model_dump(by_alias=True, exclude_none=True, mode="json")
        body["status"] = {**(body.get("status") or {}), "pgbouncer": {"readReplicas": entries}}
        measured = stack_from_body(body)
        manifest = set_owner_reference(
            pgbouncer.build_pgbouncer_ro_config_map(measured), owner_reference(stack.metadata)
        )
        digest = apply.manifest_hash(manifest)
        if digest == memory.applied and now - memory.ensured_at < self._refresh:
            return
        try:
            await apply.ensure(self._kube, manifest)
            memory.applied, memory.ensured_at = digest, now
        except (KubeError, httpx.HTTPError) as exc:
            telemetry.stack_logger(logger, stack.namespace, stack.name).warning(
                "read pool: could not apply %s: %s", manifest["metadata"]["name"], exc
            )


def _status_entries(memory: _StackMemory) -> list[Manifest]:
    out = []
    for replica in memory.stack.spec.pgbouncer.read_replicas:
        mem = memory.replicas.get((replica.host, replica.port)) or _ReplicaMemory()
        entry: Manifest = {
            "host": replica.host,
            "port": replica.port,
            "inReadPool": mem.in_pool,
            "message": mem.message,
        }
        if mem.lag is not None:
            entry["lagSeconds"] = round(mem.lag, 1)
        if mem.since is not None:
            entry["lastTransitionTime"] = mem.since
        out.append(entry)
    return out


def _shape(entry: Manifest) -> tuple[Any, ...]:
    """What makes a status entry change at once: membership, not the drifting numbers."""
    return (entry["host"], entry["port"], entry["inReadPool"])


def _export(key: StackKey, rkey: ReplicaKey, mem: _ReplicaMemory) -> None:
    replica = f"{rkey[0]}:{rkey[1]}"
    telemetry.READ_REPLICA_IN_POOL.labels(*key, replica).set(1 if mem.in_pool else 0)
    if mem.lag is not None:
        telemetry.READ_REPLICA_LAG.labels(*key, replica).set(mem.lag)


def _decoded(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return base64.b64decode(raw).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
