"""The policy's configuration defaults are the CRD's: the simulator, which builds configs
directly, runs what a stack with a minimal spec runs."""

from __future__ import annotations

from retention_operator.autoscaling.config import ApiPolicyConfig, WorkerPolicyConfig
from retention_operator.autoscaling.targets import api_config, worker_config
from retention_operator.model import stack_from_body


def test_a_minimal_spec_gives_the_default_configs() -> None:
    stack = stack_from_body(
        {
            "metadata": {"name": "s", "namespace": "ns", "uid": "u"},
            "spec": {
                "api": {"image": "img"},
                "workers": {},
                "redis": {"external": {"url": "redis://127.0.0.1:6379/0"}},
                "pgbouncer": {
                    "database": {"host": "db", "name": "d", "user": "u"},
                    "credentialsSecretRef": {"name": "c"},
                },
            },
        }
    )
    assert api_config(stack) == ApiPolicyConfig()
    assert worker_config(stack) == WorkerPolicyConfig()
