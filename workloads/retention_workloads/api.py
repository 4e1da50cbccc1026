"""The HTTP API: accept jobs onto the stream, report finished jobs from PostgreSQL.

Routes: ``POST /v1/jobs`` (validate, append to the stream, 202 with the id; 503 with
Retry-After while the backlog is at its bound or Redis is full or down, before
anything is written; an ``Idempotency-Key`` header returns the job the key made first),
``GET /v1/jobs/{job_id}`` (the row the worker wrote, or 404 while there is
none), ``/healthz`` (the process serves), ``/readyz`` (Redis and the database
answer), ``/metrics`` (Prometheus) and the OpenAPI document at ``/openapi.json``.

Entry point: :func:`run` (console script ``retention-api``, or
``python -m retention_workloads.api``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import exceptions as redis_errors
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retention_workloads import db, logs, queue, settings
from retention_workloads.capacity import Capacity
from retention_workloads.jobs import (
    IDEMPOTENCY_KEY_PATTERN,
    JobAccepted,
    JobRequest,
    JobState,
    new_job_fields,
    request_fingerprint,
)
from retention_workloads.metrics import ApiMetrics, api_metrics

log = logging.getLogger("retention.api")

MAX_BODY_BYTES = 256 * 1024
"""Requests announcing a larger body are refused with 413 before it is read."""

# Probes and scrapes are not traffic: timing them would pull the p95 that the
# autoscaler acts on towards zero.
_UNTIMED = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestMetrics:
    """ASGI middleware: times each request into the histogram, labelled by route template.

    The route template (``/v1/jobs/{job_id}``), not the path, keeps the label
    set bounded; a path that matches no route is labelled ``unmatched``. Also
    refuses bodies announced larger than :data:`MAX_BODY_BYTES`.
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTIMED:
            await self._app(scope, receive, send)
            return
        if _announced_length(scope) > MAX_BODY_BYTES:
            await _too_large(send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self._metrics.request_duration.labels(
                *self._metrics.identity, template, scope["method"], str(status)
            ).observe(time.perf_counter() - started)


def _announced_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _too_large(send: Send) -> None:
    body = b'{"detail":"request body too large"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(config: settings.Settings) -> FastAPI:
    """Build the application; connections are opened on start-up and closed on shutdown.

    Start-up never fails because Redis or the database is down: ``/readyz``
    says so, and requests that need them answer 503 until they are back.
    """
    metrics = api_metrics(namespace=config.namespace, stack=config.stack)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.queue = queue.connect(config)
        # min_size=0: no connection is opened here, so a database outage
        # delays GET requests, not the API's start.
        app.state.pools = await db.create_pools(config)
        log.info(
            "serving on %s:%d", config.bind_address, config.http_port,
            extra={"stream": config.stream, "redis": logs.redact(config.redis_url)},
        )  # fmt: skip
        try:
            yield
        finally:
            await app.state.pools.close()
            await app.state.queue.close()

    app = FastAPI(
        title="retention-stack workloads API",
        version="1.0.0",
        description="Accepts jobs onto the stack's queue and reports finished jobs.",
        lifespan=lifespan,
    )
    # Added first, so it runs inside RequestMetrics: the wait for a slot is timed.
    app.add_middleware(
        Capacity,
        concurrency=config.api_concurrency,
        service_ms=config.api_service_ms,
        exempt=_UNTIMED,
    )
    app.add_middleware(RequestMetrics, metrics=metrics)
    _routes(app, config=config, metrics=metrics)
    return app


# A 503 says when to try again: the queue or the database is usually back within seconds
# (a Redis failover, a PgBouncer pod replaced, a Service's endpoints catching up).
RETRY_AFTER = {"Retry-After": "1"}
# A full queue drains at the workers' pace: clients come back a little later.
RETRY_AFTER_FULL = {"Retry-After": "5"}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "The queue or the database is unreachable; retry later."}
}
_SUBMIT_ANSWERS: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "Not accepted: the queue is at its bound, Redis is full or unreachable. "
        "Nothing was queued; retry after Retry-After."
    },
    422: {"description": "An invalid field, or an Idempotency-Key reused for another request."},
}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="A key of the client's choosing (a UUID, say): a request with a key seen in "
        "the last 24 hours returns the job that key made instead of a new one.",
    ),
]


def _routes(app: FastAPI, *, config: settings.Settings, metrics: ApiMetrics) -> None:
    def refuse(reason: str, detail: str, headers: dict[str, str]) -> HTTPException:
        metrics.jobs_refused.labels(*metrics.identity, reason).inc()
        return HTTPException(503, detail, headers=headers)

    @app.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobAccepted,
        responses=_SUBMIT_ANSWERS,
        summary="Queue a job",
    )
    async def submit_job(
        body: JobRequest,
        request: Request,
        response: Response,
        idempotency_key: IdempotencyKey = None,
    ) -> JobAccepted:
        """Append the job to the stack's stream and return its id; 422 names an invalid field.

        A job is refused (503) before anything is written, never dropped after
        the 202: at the backlog bound, at Redis's maxmemory, or while Redis is away.
        """
        job_id, fields = new_job_fields(body)
        fingerprint = request_fingerprint(body)
        key = None if idempotency_key is None else (idempotency_key, fingerprint)
        try:
            admission = await queue.admit(
                request.app.state.queue,
                fields,
                job_id=str(job_id),
                max_backlog=config.queue_max_backlog,
                idempotency=key,
            )
        except redis_errors.OutOfMemoryError:
            log.warning("enqueue refused: Redis is at its maxmemory")
            full = "queue full: Redis is out of memory"
            raise refuse("redis_memory", full, RETRY_AFTER_FULL) from None
        except Exception as exc:
            if not queue.is_unavailable(exc):
                raise
            log.warning("enqueue failed: %s", type(exc).__name__, extra=logs.error_fields(exc))
            raise refuse("unavailable", "queue unavailable", RETRY_AFTER) from None
        if admission.outcome == "full":
            detail = f"queue full: {admission.backlog} jobs waiting, the bound is "
            raise refuse("queue_full", detail + str(config.queue_max_backlog), RETRY_AFTER_FULL)
        if admission.outcome == "replayed":
            if admission.fingerprint != fingerprint:
                raise HTTPException(
                    422, "Idempotency-Key was already used for a request with another body"
                )
            job_id = uuid.UUID(admission.job_id)
            response.headers["Idempotent-Replayed"] = "true"
        response.headers["Location"] = f"/v1/jobs/{job_id}"
        return JobAccepted(id=job_id)

    @app.get(
        "/v1/jobs/{job_id}",
        response_model=JobState,
        responses={404: {"description": "No finished job with this id (yet)."}, **_UNAVAILABLE},
        summary="Read a finished job",
    )
    async def read_job(job_id: uuid.UUID, request: Request) -> JobState:
        """Return the job's row (read from a replica, else the primary); 404 while the job is
        queued, running, or unknown."""
        try:
            row = await db.read_your_writes(request.app.state.pools, job_id)
        except Exception as exc:
            if not db.is_transient(exc):
                raise
            log.warning("database read failed: %s", type(exc).__name__)
            raise HTTPException(503, "database unavailable", headers=RETRY_AFTER) from None
        if row is None:
            raise HTTPException(404, "no finished job with this id")
        return JobState(
            id=row.id,
            task=row.task,
            state=row.state,  # type: ignore[arg-type]  # the table's CHECK allows only these
            result=row.result,
            error=row.error,
            attempts=row.attempts,
            finished_at=row.finished_at,
        )

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """Always 200 while the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready."}})
    async def readyz(request: Request) -> JSONResponse:
        """200 when Redis and the database (through PgBouncer) both answer, 503 otherwise."""
        redis_ok, db_ok = await asyncio.gather(
            queue.ping(request.app.state.queue), db.ping(request.app.state.pools.primary)
        )
        body = {"redis": "ok" if redis_ok else "down", "database": "ok" if db_ok else "down"}
        return JSONResponse(body, status_code=200 if redis_ok and db_ok else 503)

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def run() -> None:
    """Console script ``retention-api``: settings from the environment, serve until SIGTERM."""
    try:
        config = settings.load()
    except settings.SettingsError as exc:
        print(f"retention-api: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(namespace=config.namespace, stack=config.stack, level=config.log_level)
    uvicorn.run(
        create_app(config),
        host=config.bind_address,
        port=config.http_port,
        log_config=None,
        # One line per request would cost more than the request at 1000 req/s;
        # the histogram says what an access log would.
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(config.shutdown_timeout_s),
        backlog=2048,
        # Named rather than "auto" so that a missing uvloop or httptools fails at
        # start instead of quietly halving the instance's throughput.
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    run()
