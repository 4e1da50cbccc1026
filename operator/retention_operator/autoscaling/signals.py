"""Reading the autoscaling signals of every stack in one batch per source.

The loop calls :class:`SignalReader` once per tick with every stack it scales:

* :meth:`SignalReader.read_queues` sends ONE pipelined round trip per Redis
  endpoint (all stacks sharing a Redis URL, cluster flag and password share a
  pipeline) with the reads of each queue, which :class:`StreamReads` defines in
  one place: ``XINFO STREAM`` (``entries-added``, the arrivals counter), ``XINFO
  GROUPS`` (the group's ``lag``, ``pending`` and ``entries-read``) and a read-only
  script that finds the oldest entry not yet delivered to the group and the
  server's time (:data:`OLDEST_WAITING_SCRIPT`). For a Redis Cluster the cluster
  client's pipeline sends one batch per node that holds a stream.
* :meth:`SignalReader.read_latency` sends ONE PromQL query per Prometheus
  endpoint (:func:`latency_query`: p95, the request rate over a minute and over the
  last scrape interval, and the data's time), grouped by namespace and stack, through
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
from dataclasses import dataclass, field, replace
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
    pending`` (delivered and acknowledged); ``queue_wait_seconds`` is the age of
    the oldest entry not yet delivered (0 when none waits). Values are None when
    unknown; ``error`` says why when the source failed.
    """

    at: float
    backlog: int | None = None
    lag: int | None = None
    pending: int | None = None
    arrivals_total: int | None = None
    completed_total: int | None = None
    queue_wait_seconds: float | None = None
    error: str | None = None

    def sample(self) -> WorkerSample:
        """The reading as the policy's sample."""
        return WorkerSample(
            at=self.at,
            backlog=_float_or_none(self.backlog),
            arrivals_total=_float_or_none(self.arrivals_total),
            completed_total=_float_or_none(self.completed_total),
            queue_wait_s=self.queue_wait_seconds,
        )


@dataclass(frozen=True, slots=True)
class LatencyReading:
    """One reading of a stack's API: p95 in milliseconds, requests per second over the
    rate window and over the last scrape interval (``rps_recent``).

    ``at`` is the time of the newest scraped sample behind the values (so that
    staleness can be judged), or the time of the attempt when nothing was read.
    Values are None when unknown; ``error`` says why.
    """

    at: float
    p95_ms: float | None = None
    rps: float | None = None
    rps_recent: float | None = None
    error: str | None = None

    def sample(self) -> ApiSample:
        """The reading as the policy's sample."""
        return ApiSample(at=self.at, p95_ms=self.p95_ms, rps=self.rps, rps_recent=self.rps_recent)


def _float_or_none(value: int | None) -> float | None:
    return None if value is None else float(value)


# --- Pure parsing --------------------------------------------------------------------------


def latency_query(metric: str = contract.METRIC_API_REQUEST_DURATION) -> str:
    """The one PromQL query that gives every stack's p95, request rates and data time.

    Four vectors grouped by (namespace, stack), told apart by a ``signal``
    label (``p95`` in seconds, ``rps`` over the rate window, ``rps_recent`` between
    the last two scrapes (``irate``: a surge shows a scrape after it starts, not a
    minute), ``at`` = timestamp of the newest ``_count`` sample) and joined with
    ``or``: their label sets differ in ``signal``, so ``or`` keeps all of them.
    """
    buckets = f"sum by (namespace, stack, le) (rate({metric}_bucket[{RATE_WINDOW}]))"
    p95 = f"histogram_quantile(0.95, {buckets})"
    rps = f"sum by (namespace, stack) (rate({metric}_count[{RATE_WINDOW}]))"
    recent = f"sum by (namespace, stack) (irate({metric}_count[{RATE_WINDOW}]))"
    at = f"max by (namespace, stack) (timestamp({metric}_count))"
    return " or ".join(
        f'label_replace({expr}, "signal", "{name}", "", "")'
        for name, expr in (("p95", p95), ("rps", rps), ("rps_recent", recent), ("at", at))
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
        readings[key] = LatencyReading(
            at=now if at is None else at,
            p95_ms=p95_ms,
            rps=rps,
            rps_recent=_finite(signals.get("rps_recent")),
        )
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


# Milliseconds since the epoch of 2000-01-01: an entry ID whose time part is older was
# not made by XADD's "*" (an application chose it), so its age means nothing.
_EARLIEST_ID_MS = 946_684_800_000

OLDEST_WAITING_SCRIPT = """#!lua flags=no-writes
-- KEYS[1]: a stream; ARGV[1]: its consumer group. Returns the ID of the oldest entry
-- not yet delivered to the group (false when none waits) and the server's TIME.
local now = redis.call('TIME')
if redis.call('EXISTS', KEYS[1]) == 0 then return {false, now[1], now[2]} end
local start = '-'
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  if fields['name'] == ARGV[1] then start = '(' .. fields['last-delivered-id'] end
end
local first = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)
if #first == 0 then return {false, now[1], now[2]} end
return {first[1][1], now[1], now[2]}
"""
"""The oldest waiting entry of a stream, in the same round trip as the other reads.

Its ID is known only after the group's ``last-delivered-id``, so a script reads both
where the data is; it writes nothing (``no-writes``, so replicas may run it too).
The server's own clock dates the entry, whatever the operator's clock says.
"""


def parse_oldest_waiting(answer: object) -> float | None:
    """Seconds the oldest undelivered entry has waited, from the script's answer.

    0 when no entry waits. None for an error answer, an answer of another shape, or
    an entry ID that is not a time (chosen by the application rather than XADD's ``*``).
    """
    if not isinstance(answer, list | tuple) or len(answer) != 3:
        return None
    oldest, seconds, micros = answer
    whole, micro = _int_or_none(seconds), _int_or_none(micros)
    if whole is None or micro is None:
        return None
    now_ms = whole * 1000 + micro / 1000
    if oldest is None:
        return 0.0
    entry_ms = _int_or_none(str(oldest).partition("-")[0])
    if entry_ms is None or entry_ms < _EARLIEST_ID_MS:
        return None
    return max(now_ms - entry_ms, 0.0) / 1000


class StreamReads:
    """What is read of one Redis Stream queue, and how the answers become a reading.

    The one place that names the per-queue commands: :meth:`send` queues them on a
    pipeline, :meth:`parse` reads their :attr:`count` answers. A queue of another kind
    reads with its own object of the same shape.
    """

    count = 3

    def send(self, pipe: Any, ref: QueueRef) -> None:
        """Queue the reads of ``ref`` on ``pipe`` (a Redis or Redis Cluster pipeline)."""
        pipe.xinfo_stream(ref.stream)
        pipe.xinfo_groups(ref.stream)
        pipe.eval(OLDEST_WAITING_SCRIPT, 1, ref.stream, ref.group)

    def parse(self, answers: Sequence[object], ref: QueueRef, *, at: float) -> QueueReading:
        """The reading from this queue's :attr:`count` answers, in the order sent."""
        stream_info, groups_info, oldest = answers
        reading = parse_queue(stream_info, groups_info, group=ref.group, at=at)
        if reading.error is not None:
            return reading
        return replace(reading, queue_wait_seconds=parse_oldest_waiting(oldest))


STREAM_READS = StreamReads()


def reads_for(ref: QueueRef) -> StreamReads:
    """The reads of ``ref``'s queue (every queue is a Redis Stream for now)."""
    return STREAM_READS


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
            reads = [(ref, reads_for(ref)) for ref in refs]
            for ref, kind in reads:
                kind.send(pipe, ref)
            telemetry.AUTOSCALER_QUERIES.labels(source=SOURCE_REDIS).inc()
            answers = await asyncio.wait_for(pipe.execute(raise_on_error=False), self._timeout)
        except (RedisError, OSError, TimeoutError, ValueError) as exc:
            telemetry.AUTOSCALER_QUERY_ERRORS.labels(source=SOURCE_REDIS).inc()
            # A client that failed may hold a broken connection: start afresh next tick.
            await self._drop_redis(endpoint)
            why = f"Redis at {_redacted(endpoint.url)} did not answer: {type(exc).__name__}: {exc}"
            logger.warning(why)
            return {ref: QueueReading(at=at, error=why) for ref in refs}
        readings: dict[QueueRef, QueueReading] = {}
        offset = 0
        for ref, kind in reads:
            readings[ref] = kind.parse(answers[offset : offset + kind.count], ref, at=at)
            offset += kind.count
        return readings

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
