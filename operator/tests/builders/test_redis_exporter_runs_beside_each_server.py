"""redis_exporter runs in every Redis pod, reads its own server, and is scraped by port name.

The password reaches it from the auth Secret by reference only. The PodMonitor's
endpoint for it is tested with the other components'
(``test_pod_monitor_scrapes_each_component_by_port.py``).
"""

from __future__ import annotations

from retention_operator.builders import naming, redis
from retention_operator.model import REDIS_EXPORTER_IMAGE, RetentionStack

from .conftest import MakeStack


def _containers(stack: RetentionStack) -> dict[str, dict[str, object]]:
    pod = redis.build_redis_statefulset(stack)["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"]}


def test_every_redis_pod_runs_the_exporter_on_its_own_server(stack: RetentionStack) -> None:
    exporter = _containers(stack)[naming.EXPORTER_CONTAINER]
    assert exporter["image"] == REDIS_EXPORTER_IMAGE
    assert "command" not in exporter, "the image's entry point is the exporter"
    args = exporter["args"]
    assert isinstance(args, list)
    assert "--redis.addr=redis://127.0.0.1:6379" in args
    assert not any(a.startswith("--check-") for a in args), "no key checks: see the builder"
    assert exporter["ports"] == [
        {"name": naming.REDIS_EXPORTER_PORT_NAME, "containerPort": 9121, "protocol": "TCP"}
    ]
    assert exporter["env"] == [
        {
            "name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "demo-redis-auth", "key": "password"}},
        }
    ]
    assert exporter["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_exporter_can_be_turned_off_or_given_another_image(make_stack: MakeStack) -> None:
    off = make_stack(redis={"managed": {"exporter": {"enabled": False}}})
    assert set(_containers(off)) == {"redis"}
    mine = make_stack(redis={"managed": {"exporter": {"image": "registry.local/rx:1"}}})
    assert _containers(mine)[naming.EXPORTER_CONTAINER]["image"] == "registry.local/rx:1"
