"""The API: FastAPI. POST /v1/messages enqueues an RQ job; every request is timed in
http_request_duration_seconds, the histogram retention-stack scales the API on
(spec.api.autoscaling.latency, seriesBy podName): Prometheus attaches namespace and pod
when it scrapes the pod, so the metric carries no label naming the stack.

Run: uvicorn api:app --host 0.0.0.0 --port $RETENTION_HTTP_PORT
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jobs
from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest
from rq import Queue
from settings import QUEUE_NAME, connection

app = FastAPI(title="retention-stack RQ example")
queue = Queue(QUEUE_NAME, connection=connection())
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the first byte of a request to the end of its response.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5),
)
UNTIMED = {"/healthz", "/readyz", "/metrics"}


@app.middleware("http")
async def timed(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    if request.url.path in UNTIMED:
        return await call_next(request)
    started = time.perf_counter()
    response = await call_next(request)
    route = getattr(request.scope.get("route"), "path", "unmatched")
    DURATION.labels(request.method, route, str(response.status_code)).observe(
        time.perf_counter() - started
    )
    return response


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.get("/readyz")
def readyz() -> str:
    try:
        queue.connection.ping()
    except Exception as exc:
        raise HTTPException(503, "redis unreachable") from exc
    return "ready"


@app.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.post("/v1/messages", status_code=202)
def enqueue(message: dict[str, Any]) -> dict[str, str]:
    job = queue.enqueue(jobs.deliver, message, result_ttl=500, failure_ttl=86400)
    return {"id": job.id}
