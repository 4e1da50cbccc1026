"""The queue worker: consume jobs with a consumer group, run them, commit, then acknowledge.

Delivery is at least once and the effect is exactly once: a job's entry is
acknowledged only after its row is committed, and the row is keyed by the job
id, so a job run twice (its worker died between commit and acknowledgement)
still has one row. What a worker does with each kind of trouble:

- the job itself fails: it goes back to the end of the stream with its attempt
  count raised, after a short backoff; after ``max_attempts`` failed attempts it
  goes to the dead-letter stream with the reason;
- the entry is not a job at all: straight to the dead-letter stream;
- Redis, PgBouncer or PostgreSQL go away: not the job's fault, so no attempt is
  counted; the worker keeps the job and retries with backoff;
- a worker dies holding jobs: after ``claim_idle_ms`` another worker takes them
  over (XAUTOCLAIM); the delivery count tells how often that happened, so a job
  that kills every worker that runs it is dead-lettered too;
- SIGTERM: stop reading, finish held jobs for up to ``shutdown_timeout_s``, hand
  the rest back to the stream, leave the group, exit 0.

Entry point: :func:`run` (console script ``retention-worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop
from prometheus_client import start_http_server
from redis import exceptions as redis_errors

from retention_workloads import db, logs, queue, settings, work
from retention_workloads.jobs import Job, MalformedJob, decode_entry, retry_fields
from retention_workloads.metrics import WorkerMetrics, worker_metrics

log = logging.getLogger("retention.worker")
T = TypeVar("T")

_READ_BLOCK_MS = 1000
"""How long one read waits for new entries; also bounds how late SIGTERM is noticed."""
_TRIM_INTERVAL_S = 10.0
_MAX_BACKOFF_S = 2.0


def is_transient(exc: BaseException) -> bool:
    """Return True for errors of Redis or the database path, which say nothing about the job.

    The cluster client's own errors (no node reachable, slots not all covered)
    are states of a Redis Cluster that is forming or failing over, and pass;
    so does a Redis at its maxmemory (noeviction), which refuses the re-enqueue
    of a failed job until the workers' acknowledgements and trims free memory,
    and a former master that now refuses writes as a replica.
    """
    redis_transient = (
        redis_errors.ConnectionError,
        redis_errors.TimeoutError,
        redis_errors.BusyLoadingError,
        redis_errors.ClusterDownError,
        redis_errors.TryAgainError,
        redis_errors.MasterDownError,
        redis_errors.RedisClusterException,
        redis_errors.OutOfMemoryError,
        redis_errors.ReadOnlyError,
    )
    torn_down = queue.is_unavailable(exc) and not isinstance(exc, queue.UNAVAILABLE)
    return isinstance(exc, redis_transient) or torn_down or db.is_transient(exc)


def retry_delay(failed_attempts: int) -> float:
    """Return the pause before a failed job goes back to the stream: 0.2 s doubling, at most 5 s."""
    return float(min(0.2 * 2 ** max(failed_attempts - 1, 0), 5.0))


def failed_attempts(job: Job, *, delivered: int) -> int:
    """Return the failed attempts of a job about to run for the ``delivered``-th time.

    Each delivery beyond the first means an earlier run never finished (its
    worker died), which counts as a failed attempt.
    """
    return job.attempts + max(delivered - 1, 0)


class Worker:
    """Consumes one stack's stream until :meth:`stop`; built and driven by :func:`main`."""

    def __init__(
        self,
        *,
        config: settings.Settings,
        jobs: queue.Queue,
        pool: db.Pool,
        metrics: WorkerMetrics,
    ) -> None:
        self._config = config
        self._queue = jobs
        self._pool = pool
        self._metrics = metrics
        self._held: dict[str, asyncio.Task[None]] = {}
        self._fields: dict[str, dict[bytes, bytes]] = {}
        self._stopping = asyncio.Event()
        self._last_warning: dict[str, float] = {}

    def stop(self) -> None:
        """Ask the worker to stop reading and drain; safe to call from a signal handler."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until :meth:`stop`, then drain. Returns when no job is held any more."""
        background = [
            asyncio.create_task(self._every(self._reclaim_interval(), self._reclaim)),
            asyncio.create_task(self._every(self._reclaim_interval() / 1.5, self._heartbeat)),
            asyncio.create_task(self._every(_TRIM_INTERVAL_S, self._trim)),
        ]
        try:
            await self._read_loop()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._drain()

    # Reading.

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            free = self._config.concurrency - len(self._held)
            if free <= 0:
                await asyncio.wait(
                    list(self._held.values()), timeout=0.5, return_when="FIRST_COMPLETED"
                )
                continue
            try:
                entries = await queue.read_new(
                    self._queue, consumer=self._config.consumer, count=free, block_ms=_READ_BLOCK_MS
                )
            except redis_errors.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The stream or the group vanished (a Redis without persistence restarted).
                await self._redis_call("create group", lambda: queue.ensure_group(self._queue))
                continue
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._warn("read", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)
                continue
            delay = 0.1
            for entry_id, fields in entries:
                self._hold(entry_id, fields, delivered=1)

    def _hold(self, entry_id: str, fields: dict[bytes, bytes], *, delivered: int) -> None:
        if entry_id in self._held:
            return
        task = asyncio.create_task(self._handle(entry_id, fields, delivered=delivered))
        self._held[entry_id] = task
        self._fields[entry_id] = fields

        def release(_: asyncio.Task[None]) -> None:
            self._held.pop(entry_id, None)
            self._fields.pop(entry_id, None)

        task.add_done_callback(release)

    async def _reclaim(self) -> None:
        free = self._config.concurrency - len(self._held)
        if free <= 0 or self._stopping.is_set():
            return
        consumer = self._config.consumer
        entries = await queue.reclaim(
            self._queue, consumer=consumer, min_idle_ms=self._config.claim_idle_ms, count=free
        )
        if not entries:
            return
        counts = await queue.delivery_counts(
            self._queue, consumer=consumer, ids=[entry_id for entry_id, _ in entries]
        )
        self._metrics.reclaimed.labels(*self._metrics.identity).inc(len(entries))
        log.info("reclaimed %d pending jobs", len(entries), extra={"reclaimed": len(entries)})
        for entry_id, fields in entries:
            # A claimed entry has been delivered at least twice, even if XPENDING
            # no longer lists it by the time we asked.
            self._hold(entry_id, fields, delivered=max(counts.get(entry_id, 2), 2))

    async def _heartbeat(self) -> None:
        await queue.touch(self._queue, consumer=self._config.consumer, ids=list(self._held))

    async def _trim(self) -> None:
        removed = await queue.trim_done(self._queue)
        if removed:
            log.debug("trimmed %d acknowledged entries", removed)

    # One job.

    async def _handle(self, entry_id: str, fields: dict[bytes, bytes], *, delivered: int) -> None:
        gauge = self._metrics.in_flight.labels(*self._metrics.identity)
        gauge.inc()
        try:
            try:
                job = decode_entry(entry_id, fields)
            except MalformedJob as exc:
                await self._bury(entry_id, fields, job=None, reason=str(exc), attempts=0)
                return
            failed = failed_attempts(job, delivered=delivered)
            if failed >= self._config.max_attempts:
                reason = f"delivered {delivered} times without finishing; {failed} failed attempts"
                await self._bury(entry_id, fields, job=job, reason=reason, attempts=failed)
                return
            if delivered == 1 and job.attempts == 0:
                waited = max(time.time() - job.enqueued_ms / 1000, 0.0)
                self._metrics.queue_latency.labels(*self._metrics.identity).observe(waited)
            await self._run(job, failed=failed)
        finally:
            gauge.dec()

    async def _run(self, job: Job, *, failed: int) -> None:
        started = time.perf_counter()
        started_ms = int(time.time() * 1000)
        try:
            result = await work.run(
                job, cpu_ms=self._config.job_cpu_ms, io_ms=self._config.job_io_ms
            )
            inserted = await self._db_call(
                "record result",
                lambda: db.record(
                    self._pool,
                    job_id=job.id,
                    task=job.task,
                    state="done",
                    result=result,
                    error=None,
                    attempts=failed,
                    worker=self._config.consumer,
                    enqueued_ms=job.enqueued_ms,
                    started_ms=started_ms,
                ),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Transient errors never get here (they are retried in place), so
            # this is the job's own failure: its code, or data the database refuses.
            await self._fail(job, failed=failed + 1, reason=f"{type(exc).__name__}: {exc}")
            return
        await self._redis_call("ack", lambda: queue.ack(self._queue, job.entry_id))
        self._metrics.jobs.labels(*self._metrics.identity, "done").inc()
        self._metrics.job_duration.labels(*self._metrics.identity).observe(
            time.perf_counter() - started
        )
        if not inserted:
            log.info(
                "job %s was already done; delivery acknowledged", job.id, extra={"job": str(job.id)}
            )

    async def _fail(self, job: Job, *, failed: int, reason: str) -> None:
        self._metrics.jobs.labels(*self._metrics.identity, "failed").inc()
        log.warning(
            "job %s failed (attempt %d of %d): %s",
            job.id, failed, self._config.max_attempts, reason,
            extra={"job": str(job.id)},
        )  # fmt: skip
        if failed >= self._config.max_attempts:
            fields = self._fields.get(job.entry_id) or retry_fields(job, attempts=job.attempts)
            await self._bury(job.entry_id, fields, job=job, reason=reason, attempts=failed)
            return
        await asyncio.sleep(retry_delay(failed))
        await self._redis_call(
            "retry",
            lambda: queue.requeue(self._queue, job.entry_id, retry_fields(job, attempts=failed)),
        )

    async def _bury(
        self,
        entry_id: str,
        fields: dict[bytes, bytes],
        *,
        job: Job | None,
        reason: str,
        attempts: int,
    ) -> None:
        """Dead-letter an entry with its reason; record a ``dead`` row when the job id is known."""
        if job is not None:
            try:
                await self._db_call(
                    "record dead job",
                    lambda: db.record(
                        self._pool,
                        job_id=job.id,
                        task=job.task,
                        state="dead",
                        result=None,
                        error=reason,
                        attempts=attempts,
                        worker=self._config.consumer,
                        enqueued_ms=job.enqueued_ms,
                    ),
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The dead-letter stream still gets the job; the row is a convenience.
                log.warning("could not record dead job %s: %s", job.id, type(exc).__name__)
        dead = {
            **fields,
            b"reason": reason.encode(),
            b"source_id": entry_id.encode(),
            b"failed_attempts": str(attempts).encode(),
            b"dead_ms": str(int(time.time() * 1000)).encode(),
            b"consumer": self._config.consumer.encode(),
        }
        await self._redis_call("dead-letter", lambda: queue.deadletter(self._queue, entry_id, dead))
        self._metrics.jobs.labels(*self._metrics.identity, "deadlettered").inc()
        log.warning("entry %s dead-lettered: %s", entry_id, reason, extra={"entry": entry_id})

    # Shutdown.

    async def _drain(self) -> None:
        held = list(self._held.values())
        log.info("draining %d held jobs", len(held), extra={"held": len(held)})
        if held:
            _, pending = await asyncio.wait(held, timeout=self._config.shutdown_timeout_s)
            unfinished = {i: self._fields[i] for i, t in self._held.items() if t in pending}
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for entry_id, fields in unfinished.items():
                await self._hand_back(entry_id, fields)
        await self._leave_group()

    async def _hand_back(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        # The same fields go back, so handing a job back costs it no attempt.
        try:
            await queue.requeue(self._queue, entry_id, fields)
            log.info("handed back %s", entry_id, extra={"entry": entry_id})
        except Exception as exc:
            # It stays pending under this consumer; another worker reclaims it.
            log.warning("could not hand back %s: %s", entry_id, type(exc).__name__)

    async def _leave_group(self) -> None:
        # XGROUP DELCONSUMER drops the consumer's pending entries, so only a
        # consumer that holds none is removed (one per pod would pile up).
        with contextlib.suppress(Exception):
            mine = await self._queue.client.xpending_range(
                self._queue.stream, self._queue.group, min="-", max="+", count=1,
                consumername=self._config.consumer,
            )  # fmt: skip
            if not mine:
                await self._queue.client.xgroup_delconsumer(
                    self._queue.stream, self._queue.group, self._config.consumer
                )

    # Plumbing.

    def _reclaim_interval(self) -> float:
        return max(self._config.claim_idle_ms / 2000, 0.2)

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            try:
                await step()
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("background step failed")
                else:
                    self._warn(step.__name__, exc)

    async def _db_call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await self._retrying(what, call)

    async def _redis_call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await self._retrying(what, call)

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` until it succeeds or fails with a non-transient error (raised).

        Only cancellation (the drain timeout) ends the retries otherwise.
        """
        delay = 0.05
        while True:
            try:
                return await call()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._warn(what, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF_S)

    def _warn(self, what: str, exc: BaseException) -> None:
        # At most one line per operation every 5 s: during an outage every held
        # job retries, and one line says as much as a hundred.
        now = time.monotonic()
        if now - self._last_warning.get(what, 0.0) >= 5.0:
            self._last_warning[what] = now
            log.warning("%s: %s, retrying", what, type(exc).__name__, extra=logs.error_fields(exc))


async def main(config: settings.Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then drain and return."""
    metrics = worker_metrics(namespace=config.namespace, stack=config.stack)
    start_http_server(config.metrics_port, addr=config.bind_address, registry=metrics.registry)
    jobs = queue.connect(config)
    pool = await db.create_pool(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    worker = Worker(config=config, jobs=jobs, pool=pool, metrics=metrics)

    def on_signal() -> None:
        stopping.set()
        worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        if await _prepare(jobs, pool, stopping):
            log.info(
                "consuming %s as %s", config.stream, config.consumer,
                extra={"stream": config.stream, "group": config.group, "consumer": config.consumer},
            )  # fmt: skip
            await worker.run()
    finally:
        await pool.close()
        await jobs.close()
    log.info("worker stopped")


async def _prepare(jobs: queue.Queue, pool: db.Pool, stopping: asyncio.Event) -> bool:
    """Create the group and the table, retrying while the servers are not up; False if stopped."""
    delay = 0.2
    while not stopping.is_set():
        try:
            await queue.ensure_group(jobs)
            await db.ensure_schema(pool)
            return True
        except Exception as exc:
            if not is_transient(exc):
                raise
            # The error's text as _warn gives it: the type alone hid a client that
            # could never reach its Redis again.
            log.warning(
                "waiting for Redis and the database: %s", type(exc).__name__,
                extra=logs.error_fields(exc),
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            delay = min(delay * 2, 5.0)
    return False


def run() -> None:
    """Console script ``retention-worker``: settings from the environment; exits 0 once drained.

    Exits 2 with a message naming the variable when the environment is invalid.
    """
    try:
        config = settings.load()
    except settings.SettingsError as exc:
        print(f"retention-worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(namespace=config.namespace, stack=config.stack, level=config.log_level)
    # uvloop (a dependency through uvicorn[standard]) runs the same code with less
    # CPU per job; the API gets it from uvicorn's loop="auto".
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(config))


if __name__ == "__main__":
    run()
