"""A deleted stack keeps its Redis volumes (`retainOnDelete`); a new one of that name has the data.

The key is written and read through a Redis pod (``redis-cli -c`` follows
the cluster's redirections). The stack is put back as it was, so the tests
after this one find it Ready again.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from harness import demo
from harness.fixtures_node import DemoRuns
from retention_operator import names
from retention_operator.builders import naming

pytestmark = pytest.mark.node
NAMESPACE = STACK = "demo"


def _redis(demo_runs: DemoRuns, *args: str) -> str:
    pod = f"{naming.redis(STACK)}-0"
    return demo.redis_cli(demo_runs.current.cp, pod, "-c", *args).strip()


def _claims(demo_runs: DemoRuns) -> dict[str, str]:
    out = demo_runs.current.cp.kubectl("get", "pvc", "-n", NAMESPACE, "-o", "json")
    return {
        item["metadata"]["name"]: item["spec"]["volumeName"]
        for item in json.loads(out)["items"]
        if item["status"].get("phase") == "Bound"
    }


def _redis_pods(demo_runs: DemoRuns) -> list[str]:
    selector = f"{names.LABEL_STACK}={STACK},{names.LABEL_COMPONENT}={names.COMPONENT_REDIS}"
    return demo_runs.current.cp.kubectl(
        "get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name"
    ).split()


def test_the_volumes_outlive_the_stack_and_come_back_with_the_data(demo_runs: DemoRuns) -> None:
    cp = demo_runs.current.cp
    key, value = f"probe-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    # Redis writes its append-only file on SIGTERM, so the key is on the volume when pods stop.
    assert _redis(demo_runs, "SET", key, value) == "OK"
    claims = _claims(demo_runs)
    assert len(claims) == 6
    manifest = demo_runs.current.deployed.manifest
    assert manifest.exists(), f"no {manifest} to apply the stack again from"
    cp.kubectl("delete", "rstack", STACK, "-n", NAMESPACE, "--wait=true", timeout=120)
    deadline = time.monotonic() + 120
    while _redis_pods(demo_runs):
        assert time.monotonic() < deadline, "the Redis pods outlived their stack"
        time.sleep(1)
    assert _claims(demo_runs) == claims, "the volumes must stay, bound to the same claims"
    cp.kubectl("apply", "--server-side", "-f", str(manifest))
    assert demo.wait_ready(cp, timeout=demo.READY_TIMEOUT_S), "the stack did not come back Ready"
    assert _claims(demo_runs) == claims
    assert _redis(demo_runs, "GET", key) == value
