"""An external Redis that needs a password is read with the one in the stack's Secret.

Besides proving the autoscaler authenticates, this puts a Redis password
through the operator's hands, so that the session's secret sweep
(``harness.leaks``) has it to look for in every log, Event and status.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

import retention_contract as contract
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.redis_servers import RedisServer, start_redis
from harness.services import PostgresServer
from harness.stacks import get_stack, ready_stack, stack_manifest, wait_for
from retention_operator.autoscaling.loop import STATUS_REFRESH_SECONDS

pytestmark = pytest.mark.e2e
PASSWORD = "redis-e2e-" + "5b1d8c0f9a3e7d24"


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(base_dir=tmp_path, name="redis-auth", password=PASSWORD)
    try:
        yield server
    finally:
        server.stop()


def test_the_backlog_is_read_with_the_password_from_the_secret(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_with_password: RedisServer,
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="redis-auth"), string_data={"password": PASSWORD}
        ),
    )
    manifest = stack_manifest(
        "auth",
        namespace,
        postgres=postgres,
        redis_url=f"redis://127.0.0.1:{redis_with_password.port}/0",
    )
    manifest["spec"]["redis"]["external"]["passwordSecretRef"] = {
        "name": "redis-auth",
        "key": "password",
    }
    ready_stack(control_plane, api_client, manifest, password=postgres.password)
    with redis_with_password.client() as conn:
        stream = contract.default_stream(namespace, "auth")
        conn.xgroup_create(stream, "workers", id="0", mkstream=True)
        for n in range(7):
            conn.xadd(stream, {"job": str(n)})
    # Seven jobs scale nothing, so only the loop's periodic refresh writes the new
    # backlog: up to one refresh period after the jobs arrive (CI saw 30 s run out).
    backlog = wait_for(
        lambda: (get_stack(custom, namespace, "auth").get("status") or {}).get("backlog"),
        timeout=STATUS_REFRESH_SECONDS + 10,
        what="status.backlog read from the password-protected Redis",
    )
    assert backlog == 7
