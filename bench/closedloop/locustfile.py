"""Locust for the closed loop: a LoadTestShape that replays a compressed trace at the API.

Started by :mod:`bench.closedloop.load` with ``locust --headless``; everything
comes from the environment: the trace and its compression and scale
(``CLOSEDLOOP_TRACE``, ``CLOSEDLOOP_COMPRESS``, ``CLOSEDLOOP_API_SCALE``), the
wall-clock second that is run second 0 (``CLOSEDLOOP_START``), each user's rate
(``CLOSEDLOOP_USER_RPS``), the client timeout (``CLOSEDLOOP_TIMEOUT_S``) and where
every request is written at the end (``CLOSEDLOOP_REQUESTS``: CSV ``at,latency_ms,
outcome``). The shape returns None at the trace's end, which stops the run:
bounded in time, and in count by the rate. With ``CLOSEDLOOP_SATURATE=N`` it
measures capacity instead: N users sending back to back (no wait) for
``CLOSEDLOOP_SECONDS``.

Each request reads a job that does not exist (404, a success: the read still
goes through the pod's capacity bound, PgBouncer and PostgreSQL) and closes its
connection, so that kube-proxy picks a pod per request as a load balancer
would; a kept-alive connection would stay on the pod it first reached and never
reach a new replica.
"""

from __future__ import annotations

import csv
import os
import time
import uuid
from pathlib import Path
from typing import Any

from locust import LoadTestShape, constant, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser

from bench.autoscaling.trace import read_trace
from bench.closedloop.schedule import Load, compressed, users_at

_LOAD = Load(
    compress=float(os.environ.get("CLOSEDLOOP_COMPRESS", "4")),
    api_scale=float(os.environ.get("CLOSEDLOOP_API_SCALE", "0.05")),
)
_TRACE = compressed(read_trace(Path(os.environ["CLOSEDLOOP_TRACE"])), _LOAD)
_START = float(os.environ.get("CLOSEDLOOP_START", str(time.time())))
_USER_RPS = float(os.environ.get("CLOSEDLOOP_USER_RPS", "1"))
_TIMEOUT_S = float(os.environ.get("CLOSEDLOOP_TIMEOUT_S", "10"))
_OUT = os.environ.get("CLOSEDLOOP_REQUESTS")
_SPAWN_RATE = 50.0
_SATURATE = int(os.environ.get("CLOSEDLOOP_SATURATE", "0"))
_SECONDS = float(os.environ.get("CLOSEDLOOP_SECONDS", "30"))
_rows: list[tuple[float, float, str]] = []


def _outcome(exception: BaseException | None) -> str:
    if exception is None:
        return "ok"
    text = f"{type(exception).__name__} {exception}".lower()
    return "timeout" if "timeout" in text or "timed out" in text else "failed"


@events.request.add_listener
def _record(response_time: float, exception: BaseException | None = None, **_: Any) -> None:
    ended = time.time()
    _rows.append(
        (round(ended - response_time / 1000 - _START, 3), response_time, _outcome(exception))
    )


@events.quitting.add_listener
def _write(**_: Any) -> None:
    if _OUT:
        with open(_OUT, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("at", "latency_ms", "outcome"))
            writer.writerows(_rows)


class Reader(FastHttpUser):
    """Reads one job per request, at a constant rate while the API keeps up."""

    wait_time = constant(0) if _SATURATE else constant_throughput(_USER_RPS)
    network_timeout = _TIMEOUT_S
    connection_timeout = _TIMEOUT_S

    @task
    def read(self) -> None:
        with self.client.get(
            f"/v1/jobs/{uuid.uuid4()}",
            name="GET /v1/jobs/{id}",
            headers={"Connection": "close"},
            catch_response=True,
        ) as r:
            error = getattr(r, "error", None)
            if r.status_code in (200, 404):
                r.success()
            elif error is not None:
                r.failure(error)  # the timeout or refused connection itself, not "status 0"
            else:
                r.failure(f"status {r.status_code}")


class TraceShape(LoadTestShape):
    """Users for the trace's request rate at each second; None (stop) at its end."""

    def tick(self) -> tuple[int, float] | None:
        t = time.time() - _START
        if _SATURATE:
            return (_SATURATE, _SPAWN_RATE) if t < _SECONDS else None
        if t >= _TRACE.api_rps.end:
            return None
        return users_at(_TRACE.api_rps, t, user_rps=_USER_RPS), _SPAWN_RATE
