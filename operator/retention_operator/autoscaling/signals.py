"""Reading the autoscaling signals of every stack in one batch per source.

The loop calls :class:`SignalReader` once per tick with every stack it scales:

* :meth:`SignalReader.read_queues` sends ONE pipelined round trip per Redis
  endpoint (all stacks sharing a Redis URL, cluster flag and password share a
  pipeline) with the reads of each queue, which its kind's source in :mod:`.queues`
  defines (a Redis Stream, BullMQ, RQ, Celery, any list). For a Redis Cluster the
  cluster client's pipeline sends one batch per node that holds a queue. A kind
  without an arrivals counter gets one derived from the backlog (:class:`BacklogRises`).
* :meth:`SignalReader.read_latency` sends ONE PromQL query per Prometheus
  endpoint and query (:mod:`.promql`: stacks sharing a histogram and the way its
  series are selected share a query), through prometheus-api-client run in a
  worker thread so the event loop never blocks.

Every round trip is counted in ``retention_autoscaler_queries_total{source}``
and every failure in ``retention_autoscaler_query_errors_total{source}``.
A failed, timed-out or stale source gives readings whose values are None
(missing), never zero: the policy holds replicas on missing data, while a zero
would scale down. The parsing helpers are pure and tested without servers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisClusterException, RedisError
from urllib3.util.retry import Retry as HttpRetry

from retention_operator import telemetry
from retention_operator.autoscaling.promql import (
    HistogramSeries,
    LatencyQuery,
    LatencyReading,
    StackKey,
    StackQuery,
    parse_latency,
    parse_rates,
)
from retention_operator.autoscaling.queues import (
    BullMQQueue,
    CeleryQueue,
    ListQueue,
    QueueReading,
    RQQueue,
    StreamQueue,
)

__all__ = [
    "AnyQueue",
    "BacklogRises",
    "HistogramSeries",
    "LatencyReading",
    "LatencySource",
    "QueueReading",
    "QueueRef",
    "RedisEndpoint",
    "SignalReader",
    "StackKey",
    "StackQuery",
]

logger = logging.getLogger(__name__)

SOURCE_REDIS = "redis"
SOURCE_PROMETHEUS = "prometheus"
# The forecast's history: range queries at a stack's first tick, not a tick's reading.
SOURCE_PROMETHEUS_HISTORY = "prometheus-history"
# The forecast's history: a point a minute (the minute it learns by), read in chunks of a
# week (10,080 points, under Prometheus's 11,000 per series), each within this timeout.
HISTORY_STEP_SECONDS = 60.0
HISTORY_CHUNK_SECONDS = 7 * 86400.0
HISTORY_TIMEOUT_SECONDS = 10.0
# What a query of Prometheus may fail with: refused, unreachable, late, or an answer
# of the wrong shape.
_PROMETHEUS_ERRORS = (
    PrometheusApiClientException,
    requests.RequestException,
    TimeoutError,
    ValueError,
    KeyError,
)


# --- What is read --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where a stack's queue lives; stacks with equal endpoints share one pipeline."""

    url: str
    cluster: bool = False
    password: str | None = field(default=None, repr=False)


AnyQueue = StreamQueue | BullMQQueue | RQQueue | CeleryQueue | ListQueue
"""Every kind of queue source (:mod:`.queues`); each is frozen, so it can key a dict."""


@dataclass(frozen=True, slots=True)
class QueueRef:
    """A stack's queue: which stack, and the source that knows its kind's reads."""

    namespace: str
    stack: str
    source: AnyQueue


@dataclass(frozen=True, slots=True)
class LatencySource:
    """A Prometheus and one query of it; stacks with equal sources share the query."""

    url: str
    query: LatencyQuery = field(default_factory=HistogramSeries)


class BacklogRises:
    """Arrivals and completions for a queue whose library keeps no counter.

    Every rise of the backlog between two readings counts as that many arrivals, every
    fall as that many completions; the first reading counts its backlog as arrived. It
    is a lower bound (jobs that came and went between two readings are not seen), so
    the rates read low while the backlog is flat and are right when it moves; a
    drained queue reads 0 arriving, which lets the policy scale in. The totals start
    again from the backlog when the operator restarts (a counter reset, as a Redis
    restart would be for a stream).
    """

    def __init__(self) -> None:
        self._last: dict[QueueRef, tuple[int, int]] = {}

    def fill(self, readings: dict[QueueRef, QueueReading]) -> None:
        """Give the readings of kinds without a counter their derived totals, in place.

        Queues not in ``readings`` are forgotten; a failed reading keeps the last totals.
        """
        for ref in set(self._last) - set(readings):
            del self._last[ref]
        for ref, reading in readings.items():
            if ref.source.counts_arrivals or reading.backlog is None:
                continue
            previous = self._last.get(ref)
            arrived = (
                reading.backlog
                if previous is None
                else previous[1] + max(reading.backlog - previous[0], 0)
            )
            self._last[ref] = (reading.backlog, arrived)
            readings[ref] = replace(
                reading,
                arrivals_total=arrived,
                completed_total=arrived - reading.backlog,
                arrivals_counted=False,
            )


# --- The reader ----------------------------------------------------------------------------

DEAD_LETTER_READ_EVERY = 6
"""A Redis Stream queue's dead-letter stream is read on one :meth:`SignalReader.read_queues`
in this many (every 30 s at the default 5 s tick), the first included. Its length feeds
only ``retention_stack_dead_letters``, which keeps its value in between, and an alert over
15 minutes; read on every tick it was a second command per stack per tick, a tenth of the
tick's CPU at 1,000 stacks at rest (``python -m bench.tick``)."""


@functools.lru_cache(maxsize=16384)
def _without_dead_letters(source: AnyQueue) -> AnyQueue:
    """``source`` without its dead-letter read (the same object for other kinds)."""
    if isinstance(source, StreamQueue) and source.deadletter is not None:
        return replace(source, deadletter=None)
    return source


RedisClient = aioredis.Redis | RedisCluster

_REDIS_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError, ValueError)
"""What a round trip to one Redis endpoint may raise; its stacks' readings are then missing.

``RedisClusterException`` (no startup node answered, or each refused the password) is
not a ``RedisError``: let through, it failed the whole tick of every stack."""


class SignalReader:
    """Batched reads of queue and latency signals; keeps one client per endpoint.

    One instance per loop. ``timeout`` bounds each round trip (connect, send,
    answer). Not safe for concurrent calls of the same method: the loop awaits
    one tick at a time.
    """

    def __init__(self, *, timeout: float = 3.0, clock: Callable[[], float] = time.time) -> None:
        self._timeout = timeout
        self._clock = clock
        self._redis: dict[RedisEndpoint, RedisClient] = {}
        self._prometheus: dict[str, PrometheusConnect] = {}
        self._rises = BacklogRises()
        self._queue_reads = 0
        self.refused_password: set[RedisEndpoint] = set()
        """The endpoints whose Redis refused the password at the last :meth:`read_queues`."""

    async def read_queues(
        self, queues: Mapping[RedisEndpoint, Sequence[QueueRef]]
    ) -> dict[QueueRef, QueueReading]:
        """Read every queue with one pipeline per endpoint, endpoints concurrently.

        Returns a reading for every queue given; when an endpoint fails, each of
        its queues gets a reading with ``error`` set and None values.
        """
        endpoints = [(endpoint, list(refs)) for endpoint, refs in queues.items() if refs]
        self.refused_password = set()
        dead_letters = self._queue_reads % DEAD_LETTER_READ_EVERY == 0
        self._queue_reads += 1
        answers = await asyncio.gather(
            *(
                self._read_endpoint(endpoint, refs, dead_letters=dead_letters)
                for endpoint, refs in endpoints
            )
        )
        readings: dict[QueueRef, QueueReading] = {}
        for part in answers:
            readings.update(part)
        self._rises.fill(readings)
        await self._close_redis_except(set(queues))
        return readings

    async def read_latency(
        self, stacks: Mapping[LatencySource, Sequence[StackKey]]
    ) -> dict[StackKey, LatencyReading]:
        """Read every stack's API latency with one query per source, concurrently.

        Returns a reading for every stack given. A stack with no series in the
        answer (no API metrics scraped yet, or too old) reads as missing; a
        failed query makes every stack of that source missing, with ``error``.
        """
        sources = [(source, list(keys)) for source, keys in stacks.items() if keys]
        answers = await asyncio.gather(*(self._query(source, keys) for source, keys in sources))
        readings: dict[StackKey, LatencyReading] = {}
        for part in answers:
            readings.update(part)
        for url in set(self._prometheus) - {source.url for source in stacks}:
            self._prometheus.pop(url).close()
        return readings

    async def read_history(
        self,
        stacks: Mapping[LatencySource, Sequence[StackKey]],
        *,
        start: float,
        end: float,
        step: float = HISTORY_STEP_SECONDS,
    ) -> dict[StackKey, list[tuple[float, float]]]:
        """Each stack's request rate from ``start`` to ``end`` (seconds since the epoch;
        queries of those stacks' series only),
        a point every ``step``, by range queries of :data:`HISTORY_CHUNK_SECONDS` at most
        (Prometheus answers at most 11,000 points per series), one source after another,
        each within :data:`HISTORY_TIMEOUT_SECONDS`.

        The points fall in the middle of each step (hh:mm:30 for a minute), where the mean
        of a minute of the ticks' readings is centred, so history and ticks agree.
        A stack Prometheus has no history of is absent; a failed query leaves the
        stacks of its source absent (logged: the forecast then learns from the ticks).
        """
        history: dict[StackKey, list[tuple[float, float]]] = {}
        start = (start // step) * step + step / 2
        for source, keys in stacks.items():
            wanted = set(keys)
            if not wanted:
                continue
            conn = self._prometheus_client(source.url)
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(chunk_start + HISTORY_CHUNK_SECONDS, end)
                telemetry.AUTOSCALER_QUERIES.labels(source=SOURCE_PROMETHEUS_HISTORY).inc()
                try:
                    result = await asyncio.wait_for(
                        asyncio.to_thread(
                            conn.custom_query_range,
                            source.query.rate_promql(keys),
                            start_time=_datetime(chunk_start),
                            end_time=_datetime(chunk_end),
                            step=f"{step:g}",
                            timeout=HISTORY_TIMEOUT_SECONDS,
                        ),
                        HISTORY_TIMEOUT_SECONDS + 1.0,
                    )
                    if not isinstance(result, list):
                        raise ValueError(f"expected a matrix, got {type(result).__name__}")
                except _PROMETHEUS_ERRORS as exc:
                    telemetry.AUTOSCALER_QUERY_ERRORS.labels(source=SOURCE_PROMETHEUS_HISTORY).inc()
                    logger.warning(
                        "Prometheus at %s gave no history for the forecast: %s: %s",
                        source.url,
                        type(exc).__name__,
                        str(exc)[:300],
                    )
                    break
                for key, points in parse_rates(result, query=source.query).items():
                    if key in wanted:
                        # Chunks share their edge: a point already read is not read twice.
                        seen = history.setdefault(key, [])
                        newer = [p for p in points if not seen or p[0] > seen[-1][0]]
                        seen.extend(newer)
                chunk_start = chunk_end
        return history

    async def close(self) -> None:
        """Close every client; the reader can be used again afterwards."""
        await self._close_redis_except(set())
        for conn in self._prometheus.values():
            conn.close()
        self._prometheus.clear()

    # --- Redis ---------------------------------------------------------------------------

    async def _read_endpoint(
        self, endpoint: RedisEndpoint, refs: list[QueueRef], *, dead_letters: bool
    ) -> dict[QueueRef, QueueReading]:
        at = self._clock()
        sources = [
            ref.source if dead_letters else _without_dead_letters(ref.source) for ref in refs
        ]
        try:
            client = self._redis_client(endpoint)
            pipe = client.pipeline(transaction=False) if not endpoint.cluster else client.pipeline()
            for source in sources:
                source.send(pipe)
            telemetry.AUTOSCALER_QUERIES.labels(source=SOURCE_REDIS).inc()
            answers = await asyncio.wait_for(pipe.execute(raise_on_error=False), self._timeout)
        except _REDIS_FAILURES as exc:
            telemetry.AUTOSCALER_QUERY_ERRORS.labels(source=SOURCE_REDIS).inc()
            # A client that failed may hold a broken connection: start afresh next tick.
            await self._drop_redis(endpoint)
            if _refused_password(exc):
                self.refused_password.add(endpoint)
            why = f"Redis at {_redacted(endpoint.url)} did not answer: {type(exc).__name__}: {exc}"
            logger.warning(why)
            return {ref: QueueReading(at=at, error=why) for ref in refs}
        readings: dict[QueueRef, QueueReading] = {}
        offset = 0
        for ref, source in zip(refs, sources, strict=True):
            count = source.count
            readings[ref] = source.parse(answers[offset : offset + count], at=at)
            offset += count
        return readings

    def _redis_client(self, endpoint: RedisEndpoint) -> RedisClient:
        client = self._redis.get(endpoint)
        if client is None:
            # No retries: a retry would be a second round trip, and the next tick
            # is the retry. The connect timeout and the deadline of the whole round
            # trip (_read_endpoint) bound a server that accepts but never answers; no
            # per-reply timeout, which would cost a timer for each of a thousand
            # stacks' answers every tick.
            options: dict[str, Any] = {
                "password": endpoint.password,
                "socket_timeout": None,
                "socket_connect_timeout": self._timeout,
                "retry": RedisRetry(NoBackoff(), 0),
                "decode_responses": True,
            }
            if endpoint.cluster:
                # The Service in the URL stays a startup node (see the workloads' queue.connect).
                client = RedisCluster.from_url(endpoint.url, dynamic_startup_nodes=False, **options)
            else:
                client = aioredis.Redis.from_url(endpoint.url, **options)
            self._redis[endpoint] = client
        return client

    async def _drop_redis(self, endpoint: RedisEndpoint) -> None:
        client = self._redis.pop(endpoint, None)
        if client is not None:
            try:
                await client.aclose()
            except _REDIS_FAILURES as exc:
                logger.debug("closing the Redis client of %s: %s", _redacted(endpoint.url), exc)

    async def _close_redis_except(self, keep: set[RedisEndpoint]) -> None:
        for endpoint in [e for e in self._redis if e not in keep]:
            await self._drop_redis(endpoint)

    # --- Prometheus ----------------------------------------------------------------------

    async def _query(
        self, source: LatencySource, keys: list[StackKey]
    ) -> dict[StackKey, LatencyReading]:
        at = self._clock()
        url = source.url
        conn = self._prometheus_client(url)
        telemetry.AUTOSCALER_QUERIES.labels(source=SOURCE_PROMETHEUS).inc()
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(conn.custom_query, source.query.promql()), self._timeout + 1.0
            )
            if not isinstance(result, list):
                raise ValueError(f"expected a vector, got {type(result).__name__}")
        except _PROMETHEUS_ERRORS as exc:
            telemetry.AUTOSCALER_QUERY_ERRORS.labels(source=SOURCE_PROMETHEUS).inc()
            why = f"Prometheus at {url} did not answer: {type(exc).__name__}: {str(exc)[:300]}"
            logger.warning(why)
            return {key: LatencyReading(at=at, error=why) for key in keys}
        found = parse_latency(result, now=at, query=source.query)
        absent = LatencyReading(at=at, error=f"Prometheus at {url} has no API metrics of the stack")
        return {key: found.get(key, absent) for key in keys}

    def _prometheus_client(self, url: str) -> PrometheusConnect:
        conn = self._prometheus.get(url)
        if conn is None:
            # No retries (the next tick is the retry); the timeout bounds each request.
            conn = PrometheusConnect(url=url, retry=HttpRetry(total=0), timeout=self._timeout)
            self._prometheus[url] = conn
        return conn


def _datetime(at: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(at, dt.UTC)


def _refused_password(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from is Redis refusing the password.

    The cluster client wraps the refusal of every startup node in a
    ``RedisClusterException`` raised from the last ``AuthenticationError``.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk down the chain of causes
        if seen is None:
            return False
        if isinstance(seen, AuthenticationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _redacted(url: str) -> str:
    """The URL without anything between ``//`` and ``@`` (a password never reaches a log)."""
    head, sep, tail = url.partition("//")
    return head + sep + tail.split("@", 1)[-1] if sep else url
