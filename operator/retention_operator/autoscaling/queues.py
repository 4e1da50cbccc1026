"""What is read of each kind of queue, and how the answers become a reading: pure code.

One class per kind of ``spec.workers.queue``, each a frozen (hashable) source that
names its keys: :meth:`send` queues its reads on a Redis or Redis Cluster pipeline and
:meth:`parse` turns its :attr:`count` answers into a :class:`QueueReading`. The
reader (:mod:`.signals`) puts the reads of every queue of an endpoint in one pipeline,
so a tick costs one round trip per Redis endpoint whatever the kinds. Every read is
read-only: plain read commands, or a script flagged ``no-writes`` that also reads the
server's ``TIME`` (so ages are dated by the Redis clock). The keys follow each
library's own layout at the versions the tests run (docs/contract.md names them):

* :class:`StreamQueue`: a Redis Stream with a consumer group (``XINFO`` in a script);
* :class:`BullMQQueue`: ``<prefix>:<name>:<state>`` (BullMQ 5 and 6, ``QueueKeys``);
* :class:`RQQueue`: ``<prefix>:queue:<name>`` and its registries (RQ 2 and 3);
* :class:`CeleryQueue`: kombu's Redis transport, a list per priority step and ``unacked``;
* :class:`ListQueue`: any list, and optionally a list of jobs in progress.

``backlog`` is always waiting + in progress (``lag`` + ``pending``). A kind without an
arrivals counter (rq, celery, list) leaves ``arrivals_total`` None; the reader then
derives one from the backlog's rises (:class:`.signals.BacklogRises`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from retention_operator.autoscaling.samples import WorkerSample


@dataclass(frozen=True, slots=True)
class QueueReading:
    """One reading of a queue at ``at`` (seconds since the epoch).

    ``backlog`` is ``lag + pending``: jobs waiting for a worker plus jobs a worker holds.
    ``arrivals_total`` counts jobs enqueued since some origin (a stream's
    ``entries-added``, BullMQ's id counter); ``completed_total`` jobs finished since the
    same origin; ``queue_wait_seconds`` is the age of the oldest waiting job (0 when none
    waits). Values are None when unknown; ``error`` says why when the source failed.
    ``arrivals_counted`` is False when the counters were derived from the backlog.
    ``dead_letters`` is the length of a Redis Stream queue's dead-letter stream (None for
    other kinds, or when that read failed: it never fails the reading).
    """

    at: float
    backlog: int | None = None
    lag: int | None = None
    pending: int | None = None
    arrivals_total: int | None = None
    completed_total: int | None = None
    queue_wait_seconds: float | None = None
    error: str | None = None
    arrivals_counted: bool = True
    dead_letters: int | None = None

    def sample(self) -> WorkerSample:
        """The reading as the policy's sample."""
        return WorkerSample(
            at=self.at,
            backlog=_float_or_none(self.backlog),
            arrivals_total=_float_or_none(self.arrivals_total),
            completed_total=_float_or_none(self.completed_total),
            queue_wait_s=self.queue_wait_seconds,
        )


def _float_or_none(value: int | None) -> float | None:
    return None if value is None else float(value)


class QueueSource(Protocol):
    """The reads of one queue: what :mod:`.signals` needs of every kind."""

    @property
    def count(self) -> int:
        """How many answers :meth:`send` asks for."""
        ...

    @property
    def counts_arrivals(self) -> bool:
        """Whether the reading carries an arrivals counter of the library's own."""
        ...

    def send(self, pipe: Any) -> None:
        """Queue this queue's :attr:`count` reads on ``pipe``."""
        ...

    def parse(self, answers: Sequence[object], *, at: float) -> QueueReading:
        """The reading from this queue's answers, in the order sent."""
        ...


# --- Shared parsing ---------------------------------------------------------------------------


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str | bytes):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _number(value: object) -> float | None:
    """A number Redis sent as text (a sorted-set score), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | bytes):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _failed(answers: Sequence[object]) -> Exception | None:
    return next((a for a in answers if isinstance(a, Exception)), None)


def _server_ms(seconds: object, micros: object) -> float | None:
    """Milliseconds since the epoch from the two fields of Redis ``TIME``."""
    whole, micro = _int_or_none(seconds), _int_or_none(micros)
    if whole is None or micro is None:
        return None
    return whole * 1000 + micro / 1000


def _age(now_ms: float, since_ms: float | None) -> float:
    """Seconds from ``since_ms`` to ``now_ms``; 0 when nothing waits or for a future time."""
    return 0.0 if since_ms is None else max(now_ms - since_ms, 0.0) / 1000


@dataclass(frozen=True, slots=True)
class _TimedReply:
    """A script's reply: the server's time, ``size`` counts, then what follows them."""

    now_ms: float | None
    counts: list[int]
    rest: Sequence[object]


def _timed_reply(reply: object, size: int) -> _TimedReply | None:
    """Split a reply of TIME's two fields, ``size`` integers and the rest; None if it is an
    error or of another shape."""
    if not isinstance(reply, list | tuple) or len(reply) < size + 2:
        return None
    values = [_int_or_none(v) for v in reply[2 : size + 2]]
    if any(v is None for v in values):
        return None
    counts = [int(v or 0) for v in values]
    return _TimedReply(_server_ms(reply[0], reply[1]), counts, reply[size + 2 :])


def _reading(
    *, at: float, waiting: int, in_progress: int, wait_s: float | None, **counters: int | None
) -> QueueReading:
    return QueueReading(
        at=at,
        backlog=waiting + in_progress,
        lag=waiting,
        pending=in_progress,
        queue_wait_seconds=wait_s,
        **counters,  # type: ignore[arg-type]
    )


# --- Redis Streams ------------------------------------------------------------------------------

STREAM_SCRIPT = """#!lua flags=no-writes
-- KEYS[1]: a stream; ARGV[1]: its consumer group. Returns TIME, then 0 when the stream
-- does not exist; else 1 (no such group) or 2, its length and entries-added, the group's
-- lag, pending and entries-read (false where Redis cannot tell), and the ID of the
-- oldest entry not yet delivered to the group, or of the first entry without the group
-- (false when none waits). Any other error of XINFO STREAM (WRONGTYPE) is the reply.
local now = redis.call('TIME')
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if info['err'] then
  if string.find(string.lower(info['err']), 'no such key', 1, true) then
    return {now[1], now[2], 0}
  end
  return info
end
local stream = {}
for i = 1, #info, 2 do stream[info[i]] = info[i + 1] end
local state, lag, pending, read, start = 1, false, 0, false, '-'
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  if fields['name'] == ARGV[1] then
    state, lag, pending, read = 2, fields['lag'], fields['pending'], fields['entries-read']
    start = '(' .. fields['last-delivered-id']
  end
end
local first = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 1)
local oldest = false
if #first > 0 then oldest = first[1][1] end
return {now[1], now[2], state, stream['length'], stream['entries-added'] or false,
  lag, pending, read, oldest}
"""
"""A stream's counts, its group's and its oldest waiting entry, in one read-only script.

``XINFO STREAM`` and ``XINFO GROUPS`` answer maps of every field (and the first and
last entries whole); the script reads them where the data is and answers the numbers
alone. The oldest waiting entry's ID is known only after the group's
``last-delivered-id``, and the server's own clock dates it, whatever the operator's
clock says. It writes nothing (``no-writes``: replicas and read-only users may run it).
"""

_STREAM_ABSENT, _STREAM_WITHOUT_GROUP, _STREAM_WITH_GROUP = 0, 1, 2

# Milliseconds since the epoch of 2000-01-01: an entry ID whose time part is older was
# not made by XADD's "*" (an application chose it), so its age means nothing.
_EARLIEST_ID_MS = 946_684_800_000


def _entry_wait(now_ms: float | None, oldest: object) -> float | None:
    """Seconds the oldest waiting entry has waited: 0 when none waits; None without the
    server's time or for an ID that is not a time (chosen by the application, not XADD's
    ``*``)."""
    if now_ms is None:
        return None
    if oldest is None:
        return 0.0
    entry_ms = _int_or_none(str(oldest).partition("-")[0])
    if entry_ms is None or entry_ms < _EARLIEST_ID_MS:
        return None
    return _age(now_ms, entry_ms)


@dataclass(frozen=True, slots=True)
class StreamQueue:
    """A Redis Stream read by a consumer group, with :data:`STREAM_SCRIPT`.

    Waiting = the group's ``lag``, in progress = its ``pending``; arrivals are
    ``entries-added``, completions ``entries-read`` minus ``pending``. A stream that
    does not exist is an empty queue (nothing was ever enqueued). A stream without the
    group counts every entry as waiting, since its first. A group whose lag Redis cannot
    tell (entries deleted with XDEL) gives a reading with ``error`` set.

    With ``deadletter``, an ``XLEN`` of that stream follows in the same pipeline, as a
    command of its own: a stream named without a hash tag has its dead-letter stream
    in another slot of a cluster, where one script could not read both.
    """

    stream: str
    group: str
    deadletter: str | None = None
    counts_arrivals: ClassVar[bool] = True

    @property
    def count(self) -> int:
        return 1 if self.deadletter is None else 2

    def send(self, pipe: Any) -> None:
        pipe.eval(STREAM_SCRIPT, 1, self.stream, self.group)
        if self.deadletter is not None:
            pipe.xlen(self.deadletter)

    def parse(self, answers: Sequence[object], *, at: float) -> QueueReading:
        reading = self._parse_stream(answers[0], at=at)
        if self.deadletter is None:
            return reading
        return dataclasses.replace(reading, dead_letters=_int_or_none(answers[1]))

    def _parse_stream(self, reply: object, *, at: float) -> QueueReading:
        timed = _timed_reply(reply, 1)
        if timed is None:
            return QueueReading(at=at, error=f"reading stream {self.stream!r} failed: {reply}")
        (state,) = timed.counts
        if state == _STREAM_ABSENT:
            return QueueReading(
                at=at,
                backlog=0,
                lag=0,
                pending=0,
                arrivals_total=0,
                completed_total=0,
                queue_wait_seconds=_entry_wait(timed.now_ms, None),
            )
        if len(timed.rest) != 6 or state not in (_STREAM_WITHOUT_GROUP, _STREAM_WITH_GROUP):
            return QueueReading(at=at, error=f"reading stream {self.stream!r} failed: {reply}")
        length, added, lag, pending, read, oldest = timed.rest
        wait = _entry_wait(timed.now_ms, oldest)
        if state == _STREAM_WITHOUT_GROUP:
            length = _int_or_none(length)
            return QueueReading(
                at=at,
                backlog=length,
                lag=length,
                pending=0,
                arrivals_total=_int_or_none(added),
                completed_total=0,
                queue_wait_seconds=wait,
            )
        lag, pending, read = _int_or_none(lag), _int_or_none(pending), _int_or_none(read)
        if lag is None or pending is None:
            return QueueReading(at=at, error=f"Redis cannot tell the lag of group {self.group!r}")
        return _reading(
            at=at,
            waiting=lag,
            in_progress=pending,
            wait_s=wait,
            arrivals_total=_int_or_none(added),
            completed_total=None if read is None else max(read - pending, 0),
        )


# --- BullMQ ---------------------------------------------------------------------------------------

BULLMQ_SCRIPT = """#!lua flags=no-writes
-- KEYS: wait, paused, prioritized, delayed, active, waiting-children, id of one BullMQ
-- queue (one hash slot, as BullMQ requires); ARGV[1]: the job key prefix <prefix>:<name>:.
-- Returns TIME, the counts of wait, paused, prioritized, delayed due, delayed, active,
-- waiting-children, the id counter, and since when the oldest waiting job waits (ms).
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local function marker(id) return id and string.sub(id, 1, 2) == '0:' end
local function list_count(key)
  -- A marker job "0:..." at the tail is BullMQ 4's; its getCounts leaves it out too.
  local n = redis.call('LLEN', key)
  if n > 0 and marker(redis.call('LINDEX', key, -1)) then n = n - 1 end
  return n
end
local since = false
local function consider(at) if at and (not since or at < since) then since = at end end
local function job_since(id)
  if not id or marker(id) then return nil end
  local fields = redis.call('HMGET', ARGV[1] .. id, 'timestamp', 'opts')
  local at = tonumber(fields[1])
  if not at then return nil end
  local delay = 0
  if fields[2] then
    local ok, opts = pcall(cjson.decode, fields[2])
    if ok and type(opts) == 'table' then delay = tonumber(opts['delay']) or 0 end
  end
  return at + delay
end
-- Delayed scores are timestamp * 0x1000 + a counter; this is promoteDelayedJobs' range.
local due_max = (ms + 1) * 4096 - 1
consider(job_since(redis.call('LINDEX', KEYS[1], -1)))
consider(job_since(redis.call('LINDEX', KEYS[2], -1)))
consider(job_since(redis.call('ZRANGE', KEYS[3], 0, 0)[1]))
local first = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', due_max, 'WITHSCORES', 'LIMIT', 0, 1)
if first[2] then consider(math.floor(tonumber(first[2]) / 4096)) end
return {now[1], now[2], list_count(KEYS[1]), list_count(KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('ZCOUNT', KEYS[4], '-inf', due_max), redis.call('ZCARD', KEYS[4]),
  redis.call('LLEN', KEYS[5]), redis.call('ZCARD', KEYS[6]),
  tonumber(redis.call('GET', KEYS[7]) or '0') or 0, since}
"""
"""Every count of a BullMQ queue and its oldest waiting job, in one read-only script."""

BULLMQ_KEYS = ("wait", "paused", "prioritized", "delayed", "active", "waiting-children", "id")


@dataclass(frozen=True, slots=True)
class BullMQQueue:
    """A BullMQ queue, keys ``<prefix>:<name>:<state>`` (BullMQ's ``QueueKeys``).

    Waiting = wait + paused (BullMQ 5 parks jobs of a paused queue there) + prioritized +
    delayed jobs already due (their time has come, a worker promotes them when it asks
    for a job: with no worker they wait forever); in progress = active. Arrivals are the
    ``id`` counter, which every added job increments; completed = arrivals minus every
    job still in the queue (so completed and failed, or removed). The oldest waiting job
    is the next of wait, of paused, the first of prioritized and the first due delayed
    job, dated by its ``timestamp`` plus its ``delay`` (from the job's hash).
    """

    name: str
    prefix: str = "bull"
    count: ClassVar[int] = 1
    counts_arrivals: ClassVar[bool] = True

    def key(self, state: str) -> str:
        """The key of one of the queue's states, as BullMQ's ``QueueKeys.toKey``."""
        return f"{self.prefix}:{self.name}:{state}"

    def send(self, pipe: Any) -> None:
        keys = [self.key(state) for state in BULLMQ_KEYS]
        pipe.eval(BULLMQ_SCRIPT, len(keys), *keys, f"{self.prefix}:{self.name}:")

    def parse(self, answers: Sequence[object], *, at: float) -> QueueReading:
        (reply,) = answers
        timed = _timed_reply(reply, 8)
        if timed is None:
            return QueueReading(at=at, error=f"reading BullMQ queue {self.name!r} failed: {reply}")
        wait, paused, prioritized, due, delayed, active, children, added = timed.counts
        since = _int_or_none(timed.rest[0]) if timed.rest else None
        waiting = wait + paused + prioritized + due
        in_queue = wait + paused + prioritized + delayed + active + children
        return _reading(
            at=at,
            waiting=waiting,
            in_progress=active,
            wait_s=None if timed.now_ms is None else _age(timed.now_ms, since),
            arrivals_total=added,
            completed_total=max(added - in_queue, 0),
        )


# --- RQ -------------------------------------------------------------------------------------------

RQ_SCRIPT = """#!lua flags=no-writes
-- KEYS: <prefix>:queue:<name>, its :intermediate list, <prefix>:wip:<name> (started),
-- <prefix>:scheduled:<name>; ARGV[1]: the job key prefix <prefix>:job:.
-- Returns TIME, the queued, intermediate (not yet started), live started and due
-- scheduled counts, the enqueued_at of the job at the head of the queue and the time
-- of the first due one.
local now = redis.call('TIME')
local s = tonumber(now[1])
local head = redis.call('LINDEX', KEYS[1], 0)
local enqueued = false
if head then enqueued = redis.call('HGET', ARGV[1] .. head, 'enqueued_at') end
local first = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', s, 'WITHSCORES', 'LIMIT', 0, 1)
-- A started entry's score is when it expires; StartedJobRegistry.cleanup drops <= now.
-- Entries are <job id>:<execution id> (rq.utils.parse_composite_key).
local live = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. s, '+inf')
local started = {}
for _, entry in ipairs(live) do started[string.match(entry, '^[^:]*')] = true end
-- The worker registers a job as started before its work horse takes it off the
-- intermediate list: in between it is in both, and counts once.
local moving = 0
for _, id in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  if not started[id] then moving = moving + 1 end
end
return {now[1], now[2], redis.call('LLEN', KEYS[1]), moving, #live,
  redis.call('ZCOUNT', KEYS[4], '-inf', s), enqueued, first[2] or false}
"""
"""An RQ queue's counts and its oldest job, in one read-only script."""

_RQ_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")  # rq.utils.utcparse


def _rq_time_ms(text: object) -> float | None:
    """An RQ ``enqueued_at`` (``utcformat``) as ms since the epoch; None if it is not one."""
    if not isinstance(text, str):
        return None
    for pattern in _RQ_TIME_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, pattern).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        return parsed.timestamp() * 1000
    return None


@dataclass(frozen=True, slots=True)
class RQQueue:
    """An RQ queue (RQ's ``Queue``, ``StartedJobRegistry``, ``ScheduledJobRegistry``).

    Waiting = the queue's list (``Queue.count``) + scheduled jobs already due (the
    scheduler runs inside workers, so with none they would wait forever); in progress
    = the started registry's live entries (``StartedJobRegistry.count``, whose cleanup
    drops expired ones) + the jobs on the intermediate list a worker moves a job
    through that are not started yet (a job is on both for a moment). The
    oldest waiting job is the head of the list, dated by its ``enqueued_at``, or the
    first due scheduled job, dated by its time. RQ keeps no arrivals counter.
    """

    name: str = "default"
    prefix: str = "rq"
    count: ClassVar[int] = 1
    counts_arrivals: ClassVar[bool] = False

    @property
    def queue_key(self) -> str:
        """``Queue.key``: ``<prefix>:queue:<name>``."""
        return f"{self.prefix}:queue:{self.name}"

    def send(self, pipe: Any) -> None:
        keys = [
            self.queue_key,
            f"{self.queue_key}:intermediate",
            f"{self.prefix}:wip:{self.name}",
            f"{self.prefix}:scheduled:{self.name}",
        ]
        pipe.eval(RQ_SCRIPT, len(keys), *keys, f"{self.prefix}:job:")

    def parse(self, answers: Sequence[object], *, at: float) -> QueueReading:
        (reply,) = answers
        timed = _timed_reply(reply, 4)
        if timed is None:
            return QueueReading(at=at, error=f"reading RQ queue {self.name!r} failed: {reply}")
        queued, moving, started, due = timed.counts
        enqueued, first_due = (*timed.rest, None, None)[:2]
        candidates = [_rq_time_ms(enqueued)]
        if (due_s := _number(first_due)) is not None:
            candidates.append(due_s * 1000.0)
        since = min((c for c in candidates if c is not None), default=None)
        return _reading(
            at=at,
            waiting=queued + due,
            in_progress=started + moving,
            wait_s=None if timed.now_ms is None else _age(timed.now_ms, since),
        )


# --- Celery on kombu's Redis transport ----------------------------------------------------------

CELERY_SCRIPT = """#!lua flags=no-writes
-- KEYS: the lists of one queue (one per priority step), then kombu's unacked hash;
-- ARGV[1]: the routing key of the queue's messages. Returns the length of each list and
-- the unacked messages of this queue: kombu stores each as [message, exchange, routing
-- key] in JSON (json.dumps), so the value ends with , "<routing key>"].
local counts = {}
for i = 1, #KEYS - 1 do counts[i] = redis.call('LLEN', KEYS[i]) end
local suffix = ', "' .. ARGV[1] .. '"]'
local unacked = 0
for _, value in ipairs(redis.call('HVALS', KEYS[#KEYS])) do
  if string.sub(value, -#suffix) == suffix then unacked = unacked + 1 end
end
counts[#KEYS] = unacked
return counts
"""
"""A Celery queue's lists and its unacknowledged messages, in one read-only script."""

KOMBU_SEPARATOR = "\x06\x16"
"""kombu's ``Channel.sep``: between a queue's name and a priority step."""


@dataclass(frozen=True, slots=True)
class CeleryQueue:
    """A Celery queue on kombu's Redis transport (``kombu.transport.redis``).

    Waiting = the lists of the priority steps (``<name>`` for the first step,
    ``<name>\\x06\\x16<step>`` for the others: ``Channel._q_for_pri``), which is what
    ``queue_declare(passive=True).message_count`` reports; in progress = the messages of
    this queue in ``unacked`` (delivered to a worker, not acknowledged). Celery
    acknowledges a task when it starts unless ``task_acks_late`` is on, so only with it
    do running tasks count (docs/contract.md). Messages carry no enqueue time, and
    there is no arrivals counter.
    """

    name: str = "celery"
    key_prefix: str = ""
    priority_steps: tuple[int, ...] = (0, 3, 6, 9)
    count: ClassVar[int] = 1
    counts_arrivals: ClassVar[bool] = False

    def keys(self) -> list[str]:
        """The queue's lists in priority order, then ``unacked`` (all with the key prefix)."""
        lists = [
            self.name if step == 0 else f"{self.name}{KOMBU_SEPARATOR}{step}"
            for step in self.priority_steps
        ]
        return [self.key_prefix + key for key in [*lists, "unacked"]]

    def send(self, pipe: Any) -> None:
        keys = self.keys()
        pipe.eval(CELERY_SCRIPT, len(keys), *keys, self.name)

    def parse(self, answers: Sequence[object], *, at: float) -> QueueReading:
        (reply,) = answers
        size = len(self.priority_steps) + 1
        values = [_int_or_none(v) for v in reply] if isinstance(reply, list) else []
        if isinstance(reply, Exception) or len(values) != size or None in values:
            return QueueReading(at=at, error=f"reading Celery queue {self.name!r} failed: {reply}")
        counts = [int(v or 0) for v in values]
        return _reading(at=at, waiting=sum(counts[:-1]), in_progress=counts[-1], wait_s=None)


# --- Any list ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListQueue:
    """Any Redis list: waiting = ``LLEN key``, in progress = ``LLEN in_progress_key`` (0
    without one). A list has no arrivals counter and its entries no time."""

    key: str
    in_progress_key: str | None = None
    counts_arrivals: ClassVar[bool] = False

    @property
    def count(self) -> int:
        """One LLEN, two with a list of jobs in progress."""
        return 1 if self.in_progress_key is None else 2

    def send(self, pipe: Any) -> None:
        pipe.llen(self.key)
        if self.in_progress_key is not None:
            pipe.llen(self.in_progress_key)

    def parse(self, answers: Sequence[object], *, at: float) -> QueueReading:
        failed = _failed(answers)
        lengths = [_int_or_none(a) for a in answers]
        if failed is not None or None in lengths or len(lengths) != self.count:
            return QueueReading(at=at, error=f"reading list {self.key!r} failed: {failed}")
        waiting, *busy = (int(n or 0) for n in lengths)
        return _reading(at=at, waiting=waiting, in_progress=sum(busy), wait_s=None)
