"""The job queue: a Redis Stream read by a consumer group, and its dead-letter stream.

Works the same on a standalone Redis and on a Redis Cluster. Every command
touches one key, except the Lua scripts that move an entry (to the dead-letter
stream, or back to the end of the stream); those need the stream and its
dead-letter stream in one hash slot, which the contract's ``{stack}`` hash tag
gives and :func:`check_same_slot` verifies at start-up.

Entries are acknowledged but not deleted one by one: :func:`trim_done` drops
the acknowledged head of the stream with ``XTRIM MINID``, which, unlike
``XDEL``, keeps the consumer group's ``lag`` exact for the autoscaler.

New jobs go in through :func:`admit`, one script that refuses a job while the
backlog is at its bound and remembers the client's Idempotency-Key next to the
stream (same hash slot), so a retried request finds the job it made the first time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from retention_workloads.settings import Settings, SettingsError

Client = Redis | RedisCluster
Entry = tuple[str, dict[bytes, bytes]]

# Append the entry to KEYS[2] and acknowledge ARGV[2] on KEYS[1] in one step, so
# that a crash cannot leave a job both pending and re-enqueued (or dead-lettered),
# nor in neither place. KEYS[2] is the stream itself to retry or hand a job back.
_MOVE = """
local moved = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return moved
"""


# Admit one job, atomically: replay what an Idempotency-Key (KEYS[2], when given)
# already made; refuse while the group's backlog (lag + pending; every entry before
# the group exists or while its lag is unknown) is at the bound ARGV[2] (0: none);
# else append the entry and remember the key for ARGV[3] seconds. At Redis's
# maxmemory (noeviction) the first write fails and nothing is written; once a script
# has written, Redis lets it finish, so a job is never half admitted.
_ADMIT = """
local function backlog(stream, group)
  if redis.call('EXISTS', stream) == 0 then return 0 end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then
      if info['lag'] then return info['lag'] + info['pending'] end
      return redis.call('XLEN', stream)
    end
  end
  return redis.call('XLEN', stream)
end
if KEYS[2] then
  local prior = redis.call('HMGET', KEYS[2], 'id', 'fp')
  if prior[1] then return {'replayed', prior[1], prior[2]} end
end
local bound = tonumber(ARGV[2])
if bound > 0 then
  local waiting = backlog(KEYS[1], ARGV[1])
  if waiting >= bound then return {'full', tostring(waiting)} end
end
local entry = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 6))
if KEYS[2] then
  redis.call('HSET', KEYS[2], 'id', ARGV[5], 'fp', ARGV[4])
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
return {'accepted', entry}
"""

CONNECT_TIMEOUT_S = 2.0
"""How long a connection to a Redis node may take to open. A node whose pod is gone
does not refuse: the connect hangs, and at the 10 s socket timeout one enqueue
outlasted a client's own timeout (seen with a master killed under load), so the
client could not tell a refusal from a job taken. A connect that fails has sent
nothing, so the API answers 503 and nothing was written; the cluster client tries
again on the refreshed slot map within the same request."""

IDEMPOTENCY_TTL_S = 24 * 3600
"""How long an Idempotency-Key names its job: a day, as common HTTP APIs keep them."""


@dataclass(frozen=True)
class Queue:
    """The stream, group and dead-letter stream of one stack, bound to a client."""

    client: Client
    stream: str
    group: str
    deadletter: str
    mover: AsyncScript
    admitter: AsyncScript

    async def close(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()


def connect(settings: Settings) -> Queue:
    """Build a client for the stack's Redis; no connection is opened until the first command.

    Raises :class:`SettingsError` when cluster mode is on and the stream and
    dead-letter stream fall in different hash slots.
    """
    client: Client
    if settings.redis_cluster:
        check_same_slot(settings.stream, settings.deadletter_stream)
        check_same_slot(settings.stream, idempotency_key(settings.stream, "probe"))
        # The URL's host (the stack's Service) stays a startup node: CLUSTER SLOTS
        # names nodes by IP, and redis-py's default keeps only those, so a client
        # that first asked while a recreated cluster still listed its old pods'
        # addresses could never reach it again.
        client = RedisCluster.from_url(
            settings.redis_url,
            password=settings.redis_password,
            socket_timeout=10,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            dynamic_startup_nodes=False,
        )
    else:
        client = Redis.from_url(
            settings.redis_url,
            password=settings.redis_password,
            socket_timeout=10,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
    return Queue(
        client=client,
        stream=settings.stream,
        group=settings.group,
        deadletter=settings.deadletter_stream,
        mover=client.register_script(_MOVE),
        admitter=client.register_script(_ADMIT),
    )


def check_same_slot(stream: str, other: str) -> None:
    """Raise :class:`SettingsError` unless both keys hash to the same cluster slot."""
    if key_slot(stream.encode()) != key_slot(other.encode()):
        raise SettingsError(
            f"keys {stream!r} and {other!r} are in different Redis Cluster slots;"
            " give the stream a hash tag, e.g. '{stack}:jobs' (then '{stack}:jobs:dead')"
        )


def idempotency_key(stream: str, key: str) -> str:
    """The Redis key that remembers which job a client's Idempotency-Key made.

    ``<stream>:idem:<sha256 of the key>``: the stream's hash tag keeps it in the
    stream's slot (the admit script touches both), and the digest bounds its length.
    """
    return f"{stream}:idem:{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass(frozen=True)
class Admission:
    """What :func:`admit` did with a job.

    ``accepted``: appended (``job_id`` is the new job's). ``replayed``: the
    Idempotency-Key had made a job already; ``job_id`` and ``fingerprint`` are
    that first request's. ``full``: refused, the backlog (``backlog``) is at the bound.
    """

    outcome: Literal["accepted", "replayed", "full"]
    job_id: str = ""
    fingerprint: str = ""
    backlog: int = 0


# What a call to the queue raises when Redis cannot serve it now: redis-py's
# errors, the cluster client's own (slots not covered while a cluster forms or
# fails over, no node reachable; not RedisError subclasses), and the socket's.
UNAVAILABLE = (redis_errors.RedisError, redis_errors.RedisClusterException, OSError)
# A write to a connection the peer has closed leaks the transport's own error
# instead of a ConnectionError, past every retry of redis-py's (redis/redis-py#4287):
# uvloop's RuntimeError (MagicStack/uvloop#506), and, once redis-py has torn the
# connection down under a concurrent command, the AttributeError or TypeError of
# its cleared writer. Seen on the real node after a recreated stack's Redis pods
# came back on new addresses. Matched by message, so that no other bug is hidden.
_TORN_DOWN = (
    (RuntimeError, "the handler is closed"),
    (AttributeError, "'NoneType' object has no attribute 'writelines'"),
    (AttributeError, "'NoneType' object has no attribute '_add_writer'"),
    (TypeError, "'NoneType' object is not callable"),
)


def is_unavailable(exc: BaseException) -> bool:
    """True if ``exc`` says Redis cannot serve the call now (retry later), not that it is wrong."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return any(isinstance(exc, kind) and text in str(exc) for kind, text in _TORN_DOWN)


async def ping(queue: Queue) -> bool:
    """Return True if Redis answers; False when it cannot (see :func:`is_unavailable`)."""
    try:
        return bool(await queue.client.ping())
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return False


async def admit(
    queue: Queue,
    fields: dict[bytes, bytes],
    *,
    job_id: str,
    max_backlog: int = 0,
    idempotency: tuple[str, str] | None = None,
) -> Admission:
    """Append a new job unless the backlog is at ``max_backlog`` (0: no bound); one round trip.

    ``idempotency`` is (the client's Idempotency-Key, a fingerprint of its
    request): a key seen within :data:`IDEMPOTENCY_TTL_S` returns the job it
    made instead of a new one. The stream is never capped and nothing is
    evicted: a job is refused before it is accepted, never dropped after.
    Raises what Redis raises (see ``UNAVAILABLE``), ``OutOfMemoryError`` at
    Redis's maxmemory; then nothing was written.
    """
    keys = [queue.stream]
    fingerprint = ""
    if idempotency is not None:
        keys.append(idempotency_key(queue.stream, idempotency[0]))
        fingerprint = idempotency[1]
    args: list[bytes | str | int] = [queue.group, max_backlog, IDEMPOTENCY_TTL_S]
    args += [fingerprint, job_id]
    for name, value in fields.items():
        args += [name, value]
    reply = await queue.admitter(keys=keys, args=args)
    outcome = _text(reply[0])
    if outcome == "accepted":
        return Admission("accepted", job_id=job_id)
    if outcome == "replayed":
        return Admission("replayed", job_id=_text(reply[1]), fingerprint=_text(reply[2]))
    return Admission("full", backlog=int(_text(reply[1])))


async def ensure_group(queue: Queue) -> None:
    """Create the consumer group (and the stream) if absent, reading from the first entry."""
    try:
        await queue.client.xgroup_create(queue.stream, queue.group, id="0", mkstream=True)
    except redis_errors.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read_new(queue: Queue, *, consumer: str, count: int, block_ms: int) -> list[Entry]:
    """Read up to ``count`` never-delivered entries for ``consumer``; [] after ``block_ms``."""
    reply = await queue.client.xreadgroup(
        queue.group, consumer, {queue.stream: ">"}, count=count, block=block_ms
    )
    # The client speaks RESP2: [[stream, [(id, fields), ...]]].
    streams = cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], reply or [])
    return [(_text(i), f) for _, entries in streams for i, f in entries]


async def reclaim(queue: Queue, *, consumer: str, min_idle_ms: int, count: int) -> list[Entry]:
    """Take over up to ``count`` entries pending for longer than ``min_idle_ms`` (XAUTOCLAIM).

    Entries deleted from the stream while pending are dropped from the group by
    Redis and not returned. Each claim adds one to the entry's delivery count.
    """
    claimed: list[Entry] = []
    cursor = "0-0"
    # A bounded number of scans: the cursor walks the pending list in pages.
    for _ in range(10):
        reply = await queue.client.xautoclaim(
            queue.stream, queue.group, consumer, min_idle_ms, start_id=cursor, count=count
        )
        cursor = _text(reply[0])
        claimed.extend((_text(i), f) for i, f in reply[1] if f is not None)
        if cursor == "0-0" or len(claimed) >= count:
            break
    return claimed


async def delivery_counts(queue: Queue, *, consumer: str, ids: Sequence[str]) -> dict[str, int]:
    """Return how many times each of ``ids`` has been delivered; ids not pending are absent."""
    if not ids:
        return {}
    ordered = sorted(ids, key=_id_key)
    rows = await queue.client.xpending_range(
        queue.stream,
        queue.group,
        min=ordered[0],
        max=ordered[-1],
        count=len(ids) * 4 + 16,
        consumername=consumer,
    )
    wanted = set(ids)
    counts = {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}
    return {i: n for i, n in counts.items() if i in wanted}


async def touch(queue: Queue, *, consumer: str, ids: Sequence[str]) -> None:
    """Reset the idle time of entries this consumer still works on, so none reclaims them.

    ``XCLAIM ... JUSTID`` by the owner does not raise the delivery count.
    """
    if ids:
        await queue.client.xclaim(queue.stream, queue.group, consumer, 0, list(ids), justid=True)


async def ack(queue: Queue, entry_id: str) -> None:
    """Acknowledge a finished entry; acknowledging twice is harmless."""
    await queue.client.xack(queue.stream, queue.group, entry_id)


async def requeue(queue: Queue, entry_id: str, fields: dict[bytes, bytes]) -> str:
    """Append ``fields`` as a new entry and acknowledge ``entry_id``, atomically."""
    return await _move(queue, queue.stream, entry_id, fields)


async def deadletter(queue: Queue, entry_id: str, fields: dict[bytes, bytes]) -> str:
    """Append ``fields`` to the dead-letter stream and acknowledge ``entry_id``, atomically."""
    return await _move(queue, queue.deadletter, entry_id, fields)


async def _move(queue: Queue, target: str, entry_id: str, fields: dict[bytes, bytes]) -> str:
    flat: list[bytes | str] = [queue.group, entry_id]
    for name, value in fields.items():
        flat += [name, value]
    moved = await queue.mover(keys=[queue.stream, target], args=flat)
    return _text(moved)


async def trim_done(queue: Queue) -> int:
    """Drop the head of the stream that every group has delivered and acknowledged.

    Keeps each group's pending entries and everything not yet delivered.
    Returns the number of entries removed (0 when there is nothing to drop).
    """
    groups = await queue.client.xinfo_groups(queue.stream)
    if not groups:
        return 0
    floor: tuple[int, int] | None = None
    for group in groups:
        name = _text(group["name"])
        # The first entry after last-delivered-id is the oldest the group has not seen.
        candidate = _next_id(_text(group["last-delivered-id"]))
        summary = await queue.client.xpending(queue.stream, name)
        if summary and summary.get("pending") and summary.get("min"):
            candidate = min(candidate, _id_key(_text(summary["min"])))
        floor = candidate if floor is None else min(floor, candidate)
    if floor is None or floor <= (0, 1):
        return 0
    removed = await queue.client.xtrim(queue.stream, minid=f"{floor[0]}-{floor[1]}")
    return int(removed)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: str) -> tuple[int, int]:
    ms, seq = _id_key(entry_id)
    return ms, seq + 1


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
