"""What only the operator can judge before it touches children.

A referenced Secret that is missing (or lacks its key), a database or an
external Redis that accepts no connection, a database whose TLS does not
hold up as ``spec.pgbouncer.tls`` asks (no TLS, a certificate the CA does not
trust, a certificate for another host): each is a :class:`Problem` that sets
``Stalled`` and leaves every existing child as it is. Passwords are never
read here, only whether their key is present; the CA certificate, which is
public, is read to verify the database with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

from retention_operator.builders.database import server_sslmode
from retention_operator.kube import KubeClient
from retention_operator.model import RetentionStack
from retention_operator.reconcile import database
from retention_operator.reconcile.status import Problem

REASON_SECRET_NOT_FOUND = "SecretNotFound"
REASON_SECRET_KEY_MISSING = "SecretKeyMissing"
REASON_DATABASE_UNREACHABLE = "DatabaseUnreachable"
REASON_REDIS_UNREACHABLE = "RedisUnreachable"
CONNECT_TIMEOUT = 3.0


async def _secret_problem(
    kube: KubeClient, *, namespace: str, name: str, key: str, field: str
) -> Problem | None:
    secret = await kube.get("v1", "Secret", namespace, name)
    if secret is None:
        return Problem(
            REASON_SECRET_NOT_FOUND,
            f"Secret {namespace}/{name} named by {field} does not exist",
        )
    if key not in (secret.get("data") or {}) and key not in (secret.get("stringData") or {}):
        return Problem(
            REASON_SECRET_KEY_MISSING,
            f"Secret {namespace}/{name} named by {field} has no key {key!r}",
        )
    return None


# A server that just accepted a connection is taken as reachable this long: a
# thousand stacks on one database cost one connection, not a thousand, and a
# server that refuses is tried again on every check.
REACHABLE_TTL_SECONDS = 5.0
_reachable_at: dict[tuple[str, int], float] = {}


async def tcp_error(host: str, port: int, *, within: float = CONNECT_TIMEOUT) -> str | None:
    """Return None if ``host:port`` accepts a TCP connection (or did a moment ago), else why not."""
    now = time.monotonic()
    if now - _reachable_at.get((host, port), -1e9) < REACHABLE_TTL_SECONDS:
        return None
    error = await _connect_error(host, port, within=within)
    if error is None:
        _reachable_at[(host, port)] = time.monotonic()
    else:
        _reachable_at.pop((host, port), None)
    return error


async def _connect_error(host: str, port: int, *, within: float) -> str | None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
    except TimeoutError:
        return f"no answer within {within:.0f}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def secrets_problem(kube: KubeClient, stack: RetentionStack) -> Problem | None:
    """Return the first missing Secret (or key) the stack refers to, or None."""
    spec = stack.spec
    creds = spec.pgbouncer.credentials_secret_ref
    problem = await _secret_problem(
        kube,
        namespace=stack.namespace,
        name=creds.name,
        key=creds.password_key,
        field="spec.pgbouncer.credentialsSecretRef",
    )
    if problem is not None:
        return problem
    external = spec.redis.external
    if external is not None and external.password_secret_ref is not None:
        ref = external.password_secret_ref
        if not ref.optional:
            return await _secret_problem(
                kube,
                namespace=stack.namespace,
                name=ref.name,
                key=ref.key,
                field="spec.redis.external.passwordSecretRef",
            )
    return None


async def reachability_problem(kube: KubeClient, stack: RetentionStack) -> Problem | None:
    """Return a Problem if the database (or an external Redis) refuses connections,
    or if the database's TLS fails the checks of its sslmode."""
    db = stack.spec.pgbouncer.database
    what = f"PostgreSQL at {db.host}:{db.port} (spec.pgbouncer.database)"
    error = await tcp_error(db.host, db.port)
    if error is not None:
        return Problem(REASON_DATABASE_UNREACHABLE, f"{what} accepts no connection: {error}")
    problem = await tls_problem(kube, stack, what=what)
    if problem is not None:
        return problem
    return await external_redis_problem(stack)


async def tls_problem(kube: KubeClient, stack: RetentionStack, *, what: str) -> Problem | None:
    """Return a Problem if the primary's TLS handshake fails as the stack's sslmode checks it."""
    ca = await database.ca_bundle(kube, stack)
    if isinstance(ca, database.TlsFailure):
        return Problem(ca.reason, ca.message)
    db = stack.spec.pgbouncer.database
    failure = await database.tls_failure(
        db.host,
        db.port,
        mode=server_sslmode(stack.spec.pgbouncer),
        ca_pem=ca,
        what=what,
        within=CONNECT_TIMEOUT,
    )
    return Problem(failure.reason, failure.message) if failure is not None else None


async def external_redis_problem(stack: RetentionStack) -> Problem | None:
    """Return a Problem if the stack's external Redis refuses connections (None when managed)."""
    external = stack.spec.redis.external
    if external is None:
        return None
    url = urlsplit(external.url)
    host, port = url.hostname or "", url.port or 6379
    error = await tcp_error(host, port)
    if error is None:
        return None
    return Problem(
        REASON_REDIS_UNREACHABLE,
        f"Redis at {host}:{port} (spec.redis.external.url) accepts no connection: {error}",
    )
