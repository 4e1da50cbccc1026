"""A parsed RetentionStack for the builder tests, from the minimal spec plus changes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from retention_operator.model import RetentionStack

MINIMAL_SPEC: dict[str, Any] = {
    "api": {"image": "app:1"},
    "workers": {},
    "redis": {"managed": {}},
    "pgbouncer": {
        "database": {"host": "pg.db.svc", "name": "app", "user": "app_user"},
        "credentialsSecretRef": {"name": "pg-creds"},
    },
}

MakeStack = Callable[..., RetentionStack]


def _make(**spec: Any) -> RetentionStack:
    """Return stack ``demo`` in ``ns``: MINIMAL_SPEC with top-level keys replaced."""
    body = {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {**copy.deepcopy(MINIMAL_SPEC), **spec},
    }
    return RetentionStack.model_validate(body)


@pytest.fixture
def make_stack() -> MakeStack:
    return _make


@pytest.fixture
def stack() -> RetentionStack:
    return _make()
