"""Settings of the RQ example, from the environment retention-stack sets on the pods
(docs/contract.md); each has a default for a process started by hand."""

from __future__ import annotations

import os

from redis import Redis

REDIS_URL = os.environ.get("RETENTION_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_PASSWORD = os.environ.get("RETENTION_REDIS_PASSWORD") or None
QUEUE_NAME = os.environ.get("RETENTION_QUEUE_NAME", "default")
JOB_MS = int(os.environ.get("EXAMPLE_JOB_MS", "50"))
METRICS_PORT = int(os.environ.get("RETENTION_METRICS_PORT", "9090"))
BIND_ADDRESS = os.environ.get("RETENTION_BIND_ADDRESS", "0.0.0.0")


def connection() -> Redis:
    """A client for RQ. RQ 3.0 does not run its workers on a Redis Cluster client."""
    return Redis.from_url(REDIS_URL, password=REDIS_PASSWORD)
