"""Settings: defaults from the contract, values from the variables the operator sets."""

from __future__ import annotations

import pytest

import retention_contract as contract
from retention_workloads import settings


def test_an_empty_environment_gives_the_documented_defaults():
    config = settings.load({})
    assert config.stack == contract.DEFAULT_STACK_NAME
    assert config.stream == contract.default_stream(
        contract.DEFAULT_STACK_NAMESPACE, contract.DEFAULT_STACK_NAME
    )
    assert config.deadletter_stream == contract.deadletter_stream(config.stream)
    assert config.group == contract.DEFAULT_QUEUE_GROUP
    assert config.statement_cache_size == 0
    assert (config.http_port, config.metrics_port) == (
        contract.DEFAULT_HTTP_PORT,
        contract.DEFAULT_METRICS_PORT,
    )
    assert config.redis_password is None and config.database_password is None
    assert (config.api_service_ms, config.api_concurrency) == (0, 0)
    assert config.queue_max_backlog == 0, "no bound unless the spec sets one"


def test_the_stack_name_derives_the_stream_keys():
    config = settings.load(
        {
            contract.ENV_STACK_NAME: "shop",
            contract.ENV_STACK_NAMESPACE: "eu",
            contract.ENV_REDIS_CLUSTER: "true",
        }
    )
    assert (config.stream, config.deadletter_stream) == ("{eu/shop}:jobs", "{eu/shop}:jobs:dead")
    assert config.redis_cluster is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (contract.ENV_WORKER_CONCURRENCY, "0"),
        (contract.ENV_HTTP_PORT, "http"),
        (contract.ENV_REDIS_CLUSTER, "maybe"),
        (contract.ENV_SHUTDOWN_TIMEOUT_S, "-1"),
        (contract.ENV_API_CONCURRENCY, "-1"),
        (contract.ENV_API_SERVICE_MS, "fast"),
        (contract.ENV_QUEUE_MAX_BACKLOG, "-1"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_variable(name, value):
    with pytest.raises(settings.SettingsError, match=name):
        settings.load({name: value})
