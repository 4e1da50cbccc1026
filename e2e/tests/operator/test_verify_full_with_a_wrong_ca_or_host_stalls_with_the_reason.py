"""A verify-full stack whose CA did not sign the database's certificate, or whose host name
the certificate does not carry, is Stalled with a reason that says which, creates no child,
and becomes Ready once the CA is fixed, without an edit of the stack.

The database is the harness PostgreSQL serving TLS with a certificate for 127.0.0.1
only (CA ``postgres_tls``); ``localhost`` reaches the same server under a name the
certificate does not carry.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer, ServerTls, create_server_tls
from harness.stacks import (
    apply_ok,
    condition,
    create_secret,
    events,
    get_stack,
    is_ready,
    stack_manifest,
    wait_for,
)

pytestmark = pytest.mark.e2e

CA_MAP = "db-ca"
VERIFY_FULL = {
    "tls": {"sslmode": "verify-full", "ca": {"configMapKeyRef": {"name": CA_MAP, "key": "ca.crt"}}}
}


def _ca_map(core: client.CoreV1Api, namespace: str, pem: str, *, replace: bool = False) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=CA_MAP), data={"ca.crt": pem})
    if replace:
        core.replace_namespaced_config_map(CA_MAP, namespace, body)
    else:
        core.create_namespaced_config_map(namespace, body)


def _stalled(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, str] | None:
    cond = condition(get_stack(custom, namespace, name), "Stalled")
    return cond if cond and cond["status"] == "True" else None


def test_a_wrong_ca_stalls_then_the_right_one_heals_the_stack(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    postgres_tls: ServerTls,
    redis_standalone: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    other = create_server_tls(tmp_path_factory.mktemp("other"), hosts=["127.0.0.1"], ca_name="x")
    _ca_map(core, namespace, other.ca_cert.read_text())
    create_secret(core, namespace, postgres.password)
    manifest = stack_manifest(
        "wrongca", namespace, postgres=postgres, redis=redis_standalone, pgbouncer=VERIFY_FULL
    )
    apply_ok(control_plane, manifest)

    stalled = wait_for(lambda: _stalled(custom, namespace, "wrongca"), timeout=60, what="Stalled")
    assert stalled["reason"] == "DatabaseCertificateUntrusted"
    assert "spec.pgbouncer.tls.ca does not trust" in stalled["message"]
    assert f"PostgreSQL at 127.0.0.1:{postgres.port}" in stalled["message"]
    warned = wait_for(
        lambda: events(core, namespace, reason="DatabaseCertificateUntrusted"),
        timeout=30,
        what="a Warning Event",
    )
    assert warned[0].type == "Warning"
    assert not apps.list_namespaced_deployment(namespace).items

    _ca_map(core, namespace, postgres_tls.ca_cert.read_text(), replace=True)
    stack = wait_for(
        lambda: (s := get_stack(custom, namespace, "wrongca")) and is_ready(s) and s,
        timeout=90,
        what="Ready once the right CA is in the ConfigMap",
    )
    assert stack["metadata"]["generation"] == 1
    pgbouncer = apps.read_namespaced_deployment("wrongca-pgbouncer", namespace)
    volumes = {v.name: v for v in pgbouncer.spec.template.spec.volumes}
    assert volumes["ca"].config_map.name == CA_MAP


def test_a_host_the_certificate_does_not_name_stalls(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    postgres_tls: ServerTls,
    redis_standalone: RedisServer,
) -> None:
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    _ca_map(core, namespace, postgres_tls.ca_cert.read_text())
    create_secret(core, namespace, postgres.password)
    manifest = stack_manifest(
        "wronghost", namespace, postgres=postgres, redis=redis_standalone, pgbouncer=VERIFY_FULL
    )
    manifest["spec"]["pgbouncer"]["database"]["host"] = "localhost"
    apply_ok(control_plane, manifest)

    stalled = wait_for(lambda: _stalled(custom, namespace, "wronghost"), timeout=60, what="Stalled")
    assert stalled["reason"] == "DatabaseHostMismatch"
    assert "not valid for the host name 'localhost'" in stalled["message"]
