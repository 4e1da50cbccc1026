from __future__ import annotations

from retention_operator import names
from retention_operator.builders.networkpolicy import (
    build_pgbouncer_network_policy,
    build_redis_network_policy,
)
from retention_operator.model import RetentionStack

from .conftest import MakeStack


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
    # The exporter's port, from any scraper: the only rule without a "from".
    assert ingress[2] == {"ports": [{"protocol": "TCP", "port": 9121}]}
    assert len(ingress) == 3


def test_redis_without_its_exporter_admits_no_scrape(make_stack: MakeStack) -> None:
    stack = make_stack(redis={"managed": {"exporter": {"enabled": False}}})
    ingress = build_redis_network_policy(stack)["spec"]["ingress"]
    assert all("from" in rule for rule in ingress)
    assert len(ingress) == 2


def test_redis_admits_the_operator_namespace_when_given(stack: RetentionStack) -> None:
    ingress = build_redis_network_policy(stack, operator_namespace="ops")["spec"]["ingress"]
    operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}}
    assert {"from": [operator], "ports": [{"protocol": "TCP", "port": 6379}]} in ingress
