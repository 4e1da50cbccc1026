"""Fixtures of the services tests that render PgBouncer configs with the operator's builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.services import PostgresServer
from retention_operator.model import RetentionStack

StackOn = Callable[..., RetentionStack]


def _stack_on(
    postgres: PostgresServer, *, host: str | None = None, **pgbouncer: Any
) -> RetentionStack:
    """A parsed RetentionStack whose database is ``postgres`` (reached as ``host`` if given),
    with ``pgbouncer`` merged into spec.pgbouncer."""
    body = {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {"name": "svc", "namespace": "ns", "uid": "u"},
        "spec": {
            "api": {"image": "app:1"},
            "workers": {},
            "redis": {"external": {"url": "redis://127.0.0.1:6379"}},
            "pgbouncer": {
                "database": {
                    "host": host or postgres.host,
                    "port": postgres.port,
                    "name": postgres.dbname,
                    "user": postgres.user,
                },
                "credentialsSecretRef": {"name": "db"},
                **pgbouncer,
            },
        },
    }
    return RetentionStack.model_validate(body)


@pytest.fixture
def stack_on() -> StackOn:
    """``stack_on(postgres, host=None, **pgbouncer)``: a stack on a harness PostgreSQL."""
    return _stack_on
