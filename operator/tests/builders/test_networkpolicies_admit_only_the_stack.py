from __future__ import annotations

from retention_operator import names
from retention_operator.builders.networkpolicy import (
    build_pgbouncer_network_policy,
    build_redis_network_policy,
)
from retention_operator.model import RetentionStack


def _peer(component: str) -> dict[str, object]:
    return {
        "podSelector": {
            "matchLabels": {names.LABEL_STACK: "demo", names.LABEL_COMPONENT: component}
        }
    }


APP_PEERS = [_peer(names.COMPONENT_API), _peer(names.COMPONENT_WORKERS)]


def test_pgbouncer_admits_api_and_workers_only(stack: RetentionStack) -> None:
    policy = build_pgbouncer_network_policy(stack)
    assert policy["spec"]["podSelector"]["matchLabels"][names.LABEL_COMPONENT] == "pgbouncer"
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {"from": APP_PEERS, "ports": [{"protocol": "TCP", "port": 6432}]}
    ]


def test_redis_admits_api_workers_and_its_own_pods(stack: RetentionStack) -> None:
    ingress = build_redis_network_policy(stack)["spec"]["ingress"]
    assert ingress[0] == {"from": APP_PEERS, "ports": [{"protocol": "TCP", "port": 6379}]}
    assert ingress[1]["from"] == [_peer(names.COMPONENT_REDIS)]
    assert len(ingress) == 2


def test_redis_admits_the_operator_namespace_when_given(stack: RetentionStack) -> None:
    ingress = build_redis_network_policy(stack, operator_namespace="ops")["spec"]["ingress"]
    assert ingress[2]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
    ]
