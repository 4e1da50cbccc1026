"""Jobs sent to a stack's API from the host, and counted where they end: PostgreSQL.

Used by the node tier (and the demo's own check): every load here is bounded
in count, concurrency and time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from harness.postgres_servers import PostgresServer

# A careful client retries a 503 after its Retry-After, a few times.
RETRIES = 5
#: Where the project's API takes a job.
JOBS_PATH = "/v1/jobs"


@dataclass
class Posted:
    """The ids of the jobs accepted, and how many 503s were retried on the way."""

    ids: list[str]
    retried: int = 0


async def post_jobs(
    url: str,
    count: int,
    *,
    task: str,
    concurrency: int = 20,
    path: str = JOBS_PATH,
    per_second: float = 0.0,
) -> Posted:
    """POST ``count`` jobs of ``task`` to ``url`` + ``path``, retrying 503s; return the ids.

    With ``per_second``, job ``n`` is first sent no earlier than ``n / per_second``
    seconds after the start, so that the load lasts (0: as fast as ``concurrency`` goes).

    The body is ``{"task": task, "payload": {"i": n}}``, a JSON object any
    API taking jobs accepts (the examples' too); the id is the reply's ``id``.

    Raises httpx.HTTPStatusError on a POST that is refused otherwise, or
    still unavailable after ``RETRIES`` retries.
    """
    posted = Posted(ids=[])
    # Idle connections are dropped after 1 s, well inside Node.js's 5 s keep-alive
    # (the BullMQ example's API): at httpx's default of 5 s a connection the server
    # has just closed can be reused, and the POST sent on it is reset unanswered.
    limits = httpx.Limits(keepalive_expiry=1.0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)
        began = time.monotonic()

        async def one(i: int) -> str:
            if per_second > 0:
                await asyncio.sleep(max(began + i / per_second - time.monotonic(), 0.0))
            async with gate:
                for attempt in range(RETRIES + 1):
                    reply = await client.post(path, json={"task": task, "payload": {"i": i}})
                    if reply.status_code != 503 or attempt == RETRIES:
                        break
                    posted.retried += 1
                    await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
                reply.raise_for_status()
                return str(reply.json()["id"])

        posted.ids = list(await asyncio.gather(*(one(i) for i in range(count))))
    return posted


def rows(postgres: PostgresServer, task: str) -> tuple[int, int]:
    """(rows, distinct ids) of ``task`` in the jobs table; (0, 0) before the table exists."""
    if not task.replace("-", "").isalnum():
        raise ValueError(f"task names here are letters, digits and '-': {task!r}")
    exists = postgres.psql_super(
        "SELECT to_regclass('retention_jobs') IS NOT NULL", dbname=postgres.dbname
    )
    if exists.strip() != "t":
        return 0, 0
    out = postgres.psql_super(
        "SELECT count(*), count(DISTINCT id) FROM retention_jobs WHERE task = "  # noqa: S608
        f"'{task}'",
        dbname=postgres.dbname,
    )
    total, distinct = out.strip().split("|")
    return int(total), int(distinct)


def wait_rows(
    postgres: PostgresServer, task: str, count: int, *, timeout: float
) -> tuple[int, int]:
    """Wait until ``count`` rows of ``task`` exist (or ``timeout`` passes): (rows, distinct)."""
    deadline = time.monotonic() + timeout
    found = rows(postgres, task)
    while found[0] < count and time.monotonic() < deadline:
        time.sleep(1)
        found = rows(postgres, task)
    return found


def wait_taking_jobs(url: str, *, task: str, seconds: float = 30.0) -> float:
    """POST one job until the API accepts it; the seconds that took.

    After the volumes test applies the stack again, its new API once answered
    503 for 4 s after the stack was Ready (its first enqueues failed with
    RedisClusterException), longer than the load's client retries. That is the
    API's first seconds, not the fault a test measures, and it is recorded as an
    open defect; a fault is measured from an API that takes jobs.
    """
    began = time.monotonic()
    with httpx.Client(base_url=url, timeout=5) as client:
        while True:
            reply = client.post(JOBS_PATH, json={"task": task, "payload": {}})
            if reply.status_code != 503:
                reply.raise_for_status()
                return time.monotonic() - began
            assert time.monotonic() - began < seconds, f"the API answered 503 for {seconds} s"
            time.sleep(0.5)


@dataclass
class Reads:
    """Reads of one job, every 0.1 s for at most ``seconds``, in a thread of their own.

    ``codes`` counts the answers by status (0: the client's exception, whose type
    ``failures`` counts); ``slowest`` is the longest read, in seconds.
    """

    url: str
    job_id: str
    seconds: float
    codes: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def errors(self, *, allowed: frozenset[int] = frozenset({200, 404})) -> dict[int, int]:
        """The answers other than ``allowed``, by status."""
        return {code: n for code, n in self.codes.items() if code not in allowed}

    def _loop(self) -> None:
        deadline = time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                began = time.monotonic()
                try:
                    self.codes[client.get(f"{JOBS_PATH}/{self.job_id}").status_code] += 1
                except httpx.HTTPError as exc:
                    self.codes[0] += 1
                    self.failures[type(exc).__name__] += 1
                self.slowest = max(self.slowest, time.monotonic() - began)
                time.sleep(0.1)


class BackgroundPosts:
    """:func:`post_jobs` in a thread of its own, while a test breaks something."""

    def __init__(self, url: str, count: int, *, task: str, per_second: float = 0.0) -> None:
        self.posted: Posted | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.posted = asyncio.run(post_jobs(url, count, task=task, per_second=per_second))
            except BaseException as exc:  # Kept for join()'s message.
                self.error = exc

        self._thread = threading.Thread(target=run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> Posted:
        """The jobs posted; fails when the posting did not finish within ``timeout``."""
        self._thread.join(timeout)
        assert self.posted is not None, f"the jobs were not all posted: {self.error!r}"
        return self.posted
