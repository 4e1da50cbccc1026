"""Environment of the API and worker containers: the contract with the workloads.

Every variable name comes from ``retention_contract``. Passwords are never
inline: they are ``valueFrom.secretKeyRef`` to the managed Redis auth Secret,
the external Redis password Secret, or the database credentials Secret.
"""

from __future__ import annotations

from typing import Any

import retention_contract as contract
from retention_operator.builders import naming
from retention_operator.model import EnvVar, RetentionStack

EnvList = list[dict[str, Any]]

DATABASE_PASSWORD_DIR = "/var/run/retention/database"
DATABASE_PASSWORD_VOLUME = "database-password"


def _value(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def _secret(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def queue_stream(stack: RetentionStack) -> str:
    """Return the stack's job stream key: the spec's, or ``{<namespace>/<stack>}:jobs``."""
    return stack.spec.workers.queue.stream or contract.default_stream(stack.namespace, stack.name)


def redis_env(stack: RetentionStack) -> EnvList:
    """Return the Redis address, cluster flag and password reference."""
    redis = stack.spec.redis
    if redis.external is not None:
        env = [
            _value(contract.ENV_REDIS_URL, redis.external.url),
            _value(contract.ENV_REDIS_CLUSTER, str(redis.external.cluster).lower()),
        ]
        ref = redis.external.password_secret_ref
        if ref is not None:
            env.append(_secret(contract.ENV_REDIS_PASSWORD, ref.name, ref.key))
        return env
    host = naming.service_host(naming.redis(stack.name), stack.namespace)
    return [
        _value(contract.ENV_REDIS_URL, f"redis://{host}:{naming.REDIS_CLIENT_PORT}/0"),
        _value(contract.ENV_REDIS_CLUSTER, "true"),
        _secret(
            contract.ENV_REDIS_PASSWORD, naming.redis_auth(stack.name), naming.REDIS_PASSWORD_KEY
        ),
    ]


def queue_env(stack: RetentionStack) -> EnvList:
    """Return the names of the stack's queue, as its kind's library takes them.

    A Redis Stream (the default kind) gets the stream, consumer group and dead-letter
    stream; the other kinds get ``RETENTION_QUEUE_KIND`` and their own names.
    """
    queue = stack.spec.workers.queue
    if queue.bullmq is not None:
        names = [
            _value(contract.ENV_QUEUE_NAME, queue.bullmq.name),
            _value(contract.ENV_QUEUE_PREFIX, queue.bullmq.prefix),
        ]
    elif queue.rq is not None:
        names = [
            _value(contract.ENV_QUEUE_NAME, queue.rq.name),
            _value(contract.ENV_QUEUE_PREFIX, queue.rq.prefix),
            _value(contract.ENV_RQ_KEY_PREFIX, queue.rq.prefix),
        ]
    elif queue.celery is not None:
        steps = ",".join(str(step) for step in queue.celery.priority_steps)
        names = [
            _value(contract.ENV_QUEUE_NAME, queue.celery.name),
            _value(contract.ENV_QUEUE_PREFIX, queue.celery.key_prefix),
            _value(contract.ENV_QUEUE_PRIORITY_STEPS, steps),
        ]
    elif queue.list is not None:
        names = [_value(contract.ENV_QUEUE_KEY, queue.list.key)]
        if queue.list.in_progress_key is not None:
            names.append(_value(contract.ENV_QUEUE_IN_PROGRESS_KEY, queue.list.in_progress_key))
    else:
        stream = queue_stream(stack)
        return [
            _value(contract.ENV_QUEUE_STREAM, stream),
            _value(contract.ENV_QUEUE_GROUP, queue.consumer_group),
            _value(contract.ENV_DEADLETTER_STREAM, contract.deadletter_stream(stream)),
        ]
    return [_value(contract.ENV_QUEUE_KIND, queue.kind), *names]


def _pool_url(stack: RetentionStack, service: str) -> str:
    """``postgresql://user@<service>:6432/db``, with ``?sslmode=require`` when PgBouncer's
    listener serves TLS (the workloads then refuse a plain connection)."""
    pgbouncer = stack.spec.pgbouncer
    db = pgbouncer.database
    host = naming.service_host(service, stack.namespace)
    url = f"postgresql://{db.user}@{host}:{naming.PGBOUNCER_PORT}/{db.name}"
    return f"{url}?sslmode=require" if pgbouncer.tls.client is not None else url


def database_env(stack: RetentionStack) -> EnvList:
    """Return the database URLs through PgBouncer (no password) and the password reference.

    ``RETENTION_DATABASE_READ_URL`` (the read pool) is set only for a stack with
    read replicas. The asyncpg statement cache is off unless PgBouncer pools by
    session: prepared statements do not survive transaction or statement pooling.
    """
    pgbouncer = stack.spec.pgbouncer
    creds = pgbouncer.credentials_secret_ref
    read = (
        [_value(contract.ENV_DATABASE_READ_URL, _pool_url(stack, naming.pgbouncer_ro(stack.name)))]
        if pgbouncer.read_replicas
        else []
    )
    return [
        _value(contract.ENV_DATABASE_URL, _pool_url(stack, naming.pgbouncer(stack.name))),
        *read,
        _secret(contract.ENV_DATABASE_PASSWORD, creds.name, creds.password_key),
        _value(contract.ENV_DATABASE_PASSWORD_FILE, f"{DATABASE_PASSWORD_DIR}/password"),
        _value(
            contract.ENV_DB_STATEMENT_CACHE_SIZE,
            "100" if pgbouncer.pool_mode == "session" else "0",
        ),
    ]


def database_password_volume(stack: RetentionStack) -> dict[str, Any]:
    """The credentials Secret as a volume with one file, ``password``.

    The kubelet rewrites the file when the Secret changes (an environment
    variable would keep the old value until the pod restarts).
    """
    creds = stack.spec.pgbouncer.credentials_secret_ref
    return {
        "name": DATABASE_PASSWORD_VOLUME,
        "secret": {
            "secretName": creds.name,
            "items": [{"key": creds.password_key, "path": "password"}],
            "defaultMode": 0o440,
        },
    }


def database_password_mount() -> dict[str, Any]:
    """The mount of :func:`database_password_volume` that ``RETENTION_DATABASE_PASSWORD_FILE``
    points into."""
    return {"name": DATABASE_PASSWORD_VOLUME, "mountPath": DATABASE_PASSWORD_DIR, "readOnly": True}


def connection_env(stack: RetentionStack) -> EnvList:
    """Return every setting the API and the workers share, in a stable order."""
    return [
        _value(contract.ENV_STACK_NAME, stack.name),
        _value(contract.ENV_STACK_NAMESPACE, stack.namespace),
        *redis_env(stack),
        *queue_env(stack),
        *database_env(stack),
    ]


def merge_user_env(operator_env: EnvList, user_env: list[EnvVar]) -> EnvList:
    """Append the spec's extra variables, skipping names the operator already sets.

    The operator's connection settings win so that a stray entry cannot point
    the workloads at the wrong queue or database.
    """
    taken = {entry["name"] for entry in operator_env}
    extra = [
        var.model_dump(by_alias=True, exclude_none=True, mode="json")
        for var in user_env
        if var.name not in taken
    ]
    return [*operator_env, *extra]
