"""Reading the autoscaling signals of every stack in one batch per source.

The loop calls :class:`SignalReader` once per tick with every stack it scales:

* :meth:`SignalReader.read_queues` sends ONE pipelined round trip per Redis
  endpoint (all stacks sharing a Redis URL, cluster flag and password share a
  pipeline): ``XINFO STREAM`` (``entries-added``, the arrivals counter) and
  ``XINFO GROUPS`` (the group's ``lag``, ``pending`` and ``entries-read``) per
  stream. For a Redis Cluster the cluster client's pipeline sends one batch per
  node that holds a stream.
* :meth:`SignalReader.read_latency` sends ONE PromQL query per Prometheus
  endpoint (:func:`latency_query`), grouped by namespace and stack, through
  prometheus-api-client run in a worker thread so the event loop never blocks.

Every round trip is counted in ``retention_autoscaler_queries_total{source}``
and every failure in ``retention_autoscaler_query_errors_total{source}``.
A failed, timed-out or stale source gives readings whose values are None
(missing), never zero: the policy holds replicas on missing data, while a zero
would scale down. The parsing helpers are pure and tested without servers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError
from urllib3.util.retry import Retry as HttpRetry

import retention_contract as contract
from retention_operator import telemetry
from retention_operator.autoscaling.samples import ApiSample, WorkerSample

logger = logging.getLogger(__name__)

SOURCE_REDIS = "redis"
SOURCE_PROMETHEUS = "prometheus"
# Window of the PromQL rates: four scrapes at Prometheus's common 15 s interval.
RATE_WINDOW = "1m"

StackKey = tuple[str, str]
"""(namespace, stack name)."""


# --- What is read --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Where a stack's queue lives; stacks with equal endpoints share one pipeline."""

    url: str
    cluster: bool = False
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class QueueRef:
    """A stack's job stream and the consumer group of its workers."""

    namespace: str
    stack: str
    stream: str
    group: str


@dataclass(frozen=True, slots=True)
class QueueReading:
    """One reading of a queue at ``at`` (seconds since the epoch).

    ``backlog`` is ``lag + pending``; ``arrivals_total`` is the stream's
    ``entries-added``; ``completed_total`` is the group's ``entries-read -
    pending`` (delivered and acknowledged). Values are None when unknown;
    ``error`` says why when the source failed.
    """

    at: float
    backlog: int | None = None
    lag: int | None = None
    pending: int | None = None
    arrivals_total: int | None = None
    completed_total: int | None = None
    error: str | None = None

    def sample(self) -> WorkerSample:
        """The reading as the policy's sample."""
        return WorkerSample(
            at=self.at,
            backlog=_float_or_none(self.backlog),
            arrivals_total=_float_or_none(self.arrivals_total),
            completed_total=_float_or_none(self.completed_total),
        )


@dataclass(frozen=True, slots=True)
class LatencyReading:
    """One reading of a stack's API: p95 in milliseconds and requests per second.

    ``at`` is the time of the newest scraped sample behind the values (so that
    staleness can be judged), or the time of the attempt when nothing was read.
    Values are None when unknown; ``error`` says why.
    """

    at: float
    p95_ms: float | None = None
    rps: float | None = None
    error: str | None = None

    def sample(self) -> ApiSample:
        """The reading as the policy's sample."""
        return ApiSample(at=self.at, p95_ms=self.p95_ms, rps=self.rps)


def _float_or_none(value: int | None) -> float | None:
    return None if value is None else float(value)


# --- Pure parsing --------------------------------------------------------------------------


def latency_query(metric: str = contract.METRIC_API_REQUEST_DURATION) -> str:
    """The one PromQL query that gives every stack's p95, request rate and data time.

    Three vectors grouped by (namespace, stack), told apart by a ``signal``
    label (``p95`` in seconds, ``rps``, ``at`` = timestamp of the newest
    ``_count`` sample) and joined with ``or``: their label sets differ in
    ``signal``, so ``or`` keeps all of them.
    """
    buckets = f"sum by (namespace, stack, le) (rate({metric}_bucket[{RATE_WINDOW}]))"
    p95 = f"histogram_quantile(0.95, {buckets})"
    rps = f"sum by (namespace, stack) (rate({metric}_count[{RATE_WINDOW}]))"
    at = f"max by (namespace, stack) (timestamp({metric}_count))"
    return " or ".join(
        f'label_replace({expr}, "signal", "{name}", "", "")'
        for name, expr in (("p95", p95), ("rps", rps), ("at", at))
    )


def parse_latency(
    result: Iterable[Mapping[str, Any]], *, now: float
) -> dict[StackKey, LatencyReading]:
    """Turn the vector :func:`latency_query` returned into one reading per stack.

    A stack absent from ``result`` is absent from the answer (the caller
    reports it missing). NaN p95 with a request rate of zero means an idle API
    and reads as 0 ms; any other non-finite value reads as None.
    """
    found: dict[StackKey, dict[str, float]] = {}
    for series in result:
        labels = series.get("metric", {})
        key = (
            str(labels.get(contract.LABEL_NAMESPACE, "")),
            str(labels.get(contract.LABEL_STACK, "")),
        )
        try:
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        found.setdefault(key, {})[str(labels.get("signal", ""))] = value
    readings = {}
    for key, signals in found.items():
        rps = _finite(signals.get("rps"))
        p95 = signals.get("p95")
        if p95 is not None and math.isnan(p95) and rps == 0.0:
            p95_ms: float | None = 0.0
        else:
            p95_s = _finite(p95)
            p95_ms = None if p95_s is None else p95_s * 1000.0
        at = _finite(signals.get("at"))
        readings[key] = LatencyReading(at=now if at is None else at, p95_ms=p95_ms, rps=rps)
    return readings


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def parse_queue(stream_info: object, groups_info: object, *, group: str, at: float) -> QueueReading:
    """Turn the answers to ``XINFO STREAM`` and ``XINFO GROUPS`` into a reading.

    A stream that does not exist (``no such key``) is an empty queue: nothing
    was ever enqueued, so the backlog is zero. A stream without the group
    counts every entry as waiting. An error answer, an answer of an unexpected
    shape, or a group whose lag Redis cannot compute (entries deleted with
    XDEL) gives a reading with ``error`` set and None values.
    """
    if _no_such_key(stream_info):
        return QueueReading(at=at, backlog=0, lag=0, pending=0, arrivals_total=0, completed_total=0)
    if isinstance(stream_info, Exception) or not isinstance(stream_info, Mapping):
        return QueueReading(at=at, error=f"XINFO STREAM failed: {stream_info}")
    if isinstance(groups_info, Exception) or not isinstance(groups_info, list):
        return QueueReading(at=at, error=f"XINFO GROUPS failed: {groups_info}")
    added = _int_or_none(stream_info.get("entries-added"))
    ours = next((g for g in groups_info if isinstance(g, Mapping) and g.get("name") == group), None)
    if ours is None:
        length = _int_or_none(stream_info.get("length"))
        return QueueReading(
            at=at, backlog=length, lag=length, pending=0, arrivals_total=added, completed_total=0
        )
    lag = _int_or_none(ours.get("lag"))
    pending = _int_or_none(ours.get("pending"))
    read = _int_or_none(ours.get("entries-read"))
    if lag is None or pending is None:
        return QueueReading(at=at, error=f"Redis cannot tell the lag of group {group!r}")
    completed = None if read is None else max(read - pending, 0)
    return QueueReading(
        at=at,
        backlog=lag + pending,
        lag=lag,
        pending=pending,
        arrivals_total=added,
        completed_total=completed,
    )


def _no_such_key(answer: object) -> bool:
    return isinstance(answer, ResponseError) and "no such key" in str(answer).lower()


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str | bytes):
        return None
    try:
        return int(value)
    except ValueError:
        return None


# --- The reader ----------------------------------------------------------------------------

RedisClient = aioredis.Redis | RedisCluster


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

    async def read_queues(
        self, queues: Mapping[RedisEndpoint, Sequence[QueueRef]]
    ) -> dict[QueueRef, QueueReading]:
        """Read every queue with one pipeline per endpoint, endpoints concurrently.

        Returns a reading for every queue given; when an endpoint fails, each of
        its queues gets a reading with ``error`` set and None values.
        """
        endpoints = [(endpoint, list(refs)) for endpoint, refs in queues.items() if refs]
        answers = await asyncio.gather(
            *(self._read_endpoint(endpoint, refs) for endpoint, refs in endpoints)
        )
        readings: dict[QueueRef, QueueReading] = {}
        for part in answers:
            readings.update(part)
        await self._close_redis_except(set(queues))
        return readings

    async def read_latency(
        self, stacks: Mapping[str, Sequence[StackKey]]
    ) -> dict[StackKey, LatencyReading]:
        """Read every stack's API latency with one query per Prometheus URL, concurrently.

        Returns a reading for every stack given. A stack with no series in the
        answer (no API metrics scraped yet, or too old) reads as missing; a
        failed query makes every stack of that endpoint missing, with ``error``.
        """
        endpoints = [(url, list(keys)) for url, keys in stacks.items() if keys]
        answers = await asyncio.gather(*(self._query(url, keys) for url, keys in endpoints))
        readings: dict[StackKey, LatencyReading] = {}
        for part in answers:
            readings.update(part)
        for url in set(self._prometheus) - set(stacks):
            self._prometheus.pop(url).close()
        return readings

    async def close(self) -> None:
        """Close every client; the reader can be used again afterwards."""
        await self._close_redis_except(set())
        for conn in self._prometheus.values():
            conn.close()
        self._prometheus.clear()

    # --- Redis ---------------------------------------------------------------------------

    async def _read_endpoint(
        self, endpoint: RedisEndpoint, refs: list[QueueRef]
    ) -> dict[QueueRef, QueueReading]:
        at = self._clock()
        try:
            client = self._redis_client(endpoint)
            pipe = client.pipeline(transaction=False) if not endpoint.cluster else client.pipeline()
            for ref in refs:
                pipe.xinfo_stream(ref.stream)
                pipe.xinfo_groups(ref.stream)
            telemetry.AUTOSCALER_QUERIES.labels(source=SOURCE_REDIS).inc()
            answers = await asyncio.wait_for(pipe.execute(raise_on_error=False), self._timeout)
        except (RedisError, OSError, TimeoutError, ValueError) as exc:
            telemetry.AUTOSCALER_QUERY_ERRORS.labels(source=SOURCE_REDIS).inc()
            # A client that failed may hold a broken connection: start afresh next tick.
            await self._drop_redis(endpoint)
            why = f"Redis at {_redacted(endpoint.url)} did not answer: {type(exc).__name__}: {exc}"
            logger.warning(why)
            return {ref: QueueReading(at=at, error=why) for ref in refs}
        return {
            ref: parse_queue(answers[2 * i], answers[2 * i + 1], group=ref.group, at=at)
            for i, ref in enumerate(refs)
        }

    def _redis_client(self, endpoint: RedisEndpoint) -> RedisClient:
        client = self._redis.get(endpoint)
        if client is None:
            # No retries: a retry would be a second round trip, and the next tick
            # is the retry. Timeouts bound a server that accepts but never answers.
            options: dict[str, Any] = {
                "password": endpoint.password,
                "socket_timeout": self._timeout,
                "socket_connect_timeout": self._timeout,
                "retry": RedisRetry(NoBackoff(), 0),
                "decode_responses": True,
            }
            if endpoint.cluster:
                client = RedisCluster.from_url(endpoint.url, **options)
            else:
                client = aioredis.Redis.from_url(endpoint.url, **options)
            self._redis[endpoint] = client
        return client

    async def _drop_redis(self, endpoint: RedisEndpoint) -> None:
        client = self._redis.pop(endpoint, None)
        if client is not None:
            try:
                await client.aclose()
            except (RedisError, OSError) as exc:
                logger.debug("closing the Redis client of %s: %s", _redacted(endpoint.url), exc)

    async def _close_redis_except(self, keep: set[RedisEndpoint]) -> None:
        for endpoint in [e for e in self._redis if e not in keep]:
            await self._drop_redis(endpoint)

    # --- Prometheus ----------------------------------------------------------------------

    async def _query(self, url: str, keys: list[StackKey]) -> dict[StackKey, LatencyReading]:
        at = self._clock()
        conn = self._prometheus.get(url)
        if conn is None:
            # No retries (the next tick is the retry); the timeout bounds each request.
            conn = PrometheusConnect(url=url, retry=HttpRetry(total=0), timeout=self._timeout)
            self._prometheus[url] = conn
        telemetry.AUTOSCALER_QUERIES.labels(source=SOURCE_PROMETHEUS).inc()
        try:
            result = await asyncio.wait_for(
                asyncio.to_thread(conn.custom_query, latency_query()), self._timeout + 1.0
            )
            if not isinstance(result, list):
                raise ValueError(f"expected a vector, got {type(result).__name__}")
        except (
            PrometheusApiClientException,
            requests.RequestException,
            TimeoutError,
            ValueError,
            KeyError,
        ) as exc:
            telemetry.AUTOSCALER_QUERY_ERRORS.labels(source=SOURCE_PROMETHEUS).inc()
            why = f"Prometheus at {url} did not answer: {type(exc).__name__}: {str(exc)[:300]}"
            logger.warning(why)
            return {key: LatencyReading(at=at, error=why) for key in keys}
        found = parse_latency(result, now=at)
        absent = LatencyReading(at=at, error=f"Prometheus at {url} has no API metrics of the stack")
        return {key: found.get(key, absent) for key in keys}


def _redacted(url: str) -> str:
    """The URL without anything between ``//`` and ``@`` (a password never reaches a log)."""
    head, sep, tail = url.partition("//")
    return head + sep + tail.split("@", 1)[-1] if sep else url
