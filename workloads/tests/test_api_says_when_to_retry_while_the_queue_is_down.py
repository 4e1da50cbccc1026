"""The API answers 503 with Retry-After while its Redis is unreachable, never 500.

Clients (and the project's own load generators) retry after Retry-After;
the window is short in practice: a Service's endpoints catching up after the
Redis pods start, a failover.
"""

from __future__ import annotations

import httpx
import pytest

import retention_contract as contract
from harness.procs import free_port

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_a_job_posted_while_redis_is_down_gets_503_and_retry_after(standalone_backend, workloads):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    _, url = workloads.api(**{contract.ENV_REDIS_URL: nowhere})
    reply = httpx.post(f"{url}/v1/jobs", json={"task": "t", "payload": {}}, timeout=30)
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "1"
