"""A Redis master pod killed fails over; a pod deleted with its volume comes back: no hand.

On the demo's stack (3 shards with a replica each), with keys in every shard:

1. The real node is cordoned and the pod of a master deleted, so it cannot
   come back at once: Redis' own failover promotes its replica. The node is
   uncordoned, the pod comes back with its volume (its node id) at a new
   address and rejoins as a replica. The operator reports the failover
   (``status.redis.lastFailover``, a ``FailoverObserved`` Event) and the
   stack is Ready with three masters, each with its replica.
2. The volume claim of a master's pod and the pod are deleted: the pod
   comes back with a new, empty volume (a new node id). The old id's replica
   takes over, the operator forgets the old id, the new node meets the
   cluster and becomes the replica of the master that lacks one (a
   ``NodeReplaced`` Event names the pod), and the stack is Ready.

Every key is there after each. Nothing but those deletions is done to the
stack; the demo is left with 3 shards, 6 pods and their 6 claims.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
from redis import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.fixtures_node import DemoRuns
from retention_operator import names
from retention_operator.builders import naming
from retention_operator.builders.redis import DATA_VOLUME

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]
NAMESPACE = STACK = "demo"
KEYS = 3000
WAIT_S = 300


def _kubectl(demo_runs: DemoRuns, *args: str, timeout: float = 60) -> str:
    return demo_runs.current.cp.kubectl(*args, timeout=timeout)


def _json(demo_runs: DemoRuns, *args: str) -> Any:
    return json.loads(_kubectl(demo_runs, *args, "-n", NAMESPACE, "-o", "json"))


def _pods(demo_runs: DemoRuns) -> dict[str, dict[str, Any]]:
    selector = f"{names.LABEL_STACK}={STACK},{names.LABEL_COMPONENT}={names.COMPONENT_REDIS}"
    items = _json(demo_runs, "get", "pods", "-l", selector)["items"]
    return {pod["metadata"]["name"]: pod for pod in items}


def _pod_ips(demo_runs: DemoRuns) -> dict[str, str]:
    return {
        name: pod["status"]["podIP"]
        for name, pod in _pods(demo_runs).items()
        if (pod.get("status") or {}).get("podIP")
    }


def _password(demo_runs: DemoRuns) -> str:
    secret = _json(demo_runs, "get", "secret", naming.redis_auth(STACK))
    return base64.b64decode(secret["data"][naming.REDIS_PASSWORD_KEY]).decode()


def _client(demo_runs: DemoRuns) -> RedisCluster:
    password = _password(demo_runs)
    ips = _pod_ips(demo_runs)

    def remap(address: tuple[str, int]) -> tuple[str, int]:
        # Redirects name pods by IP; a hostname, if any, is mapped to the pod's IP.
        pod = address[0].split(".")[0]
        if pod.startswith(naming.redis(STACK)) and pod not in ips:
            ips.update(_pod_ips(demo_runs))
        return (ips.get(pod, address[0]), address[1])

    return RedisCluster(
        startup_nodes=[ClusterNode(ip, naming.REDIS_CLIENT_PORT) for ip in ips.values()],
        password=password,
        decode_responses=True,
        address_remap=remap,
    )


def _stack(demo_runs: DemoRuns) -> dict[str, Any]:
    stack: dict[str, Any] = _json(demo_runs, "get", "rstack", STACK)
    return stack


def _ready(stack: dict[str, Any]) -> bool:
    status = stack.get("status") or {}
    ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
    return bool(ready and ready[0]["status"] == "True")


def _redis(stack: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = (stack.get("status") or {}).get("redis") or {}
    return block


def _events(demo_runs: DemoRuns, reason: str) -> list[str]:
    items = _json(demo_runs, "get", "events", "--field-selector", f"reason={reason}")["items"]
    return [str(item.get("message", "")) for item in items]


async def _wait(what: str, check: Any, seconds: float = WAIT_S) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, f"timed out waiting for {what}"
        await asyncio.sleep(2)
    return time.monotonic() - began


def _whole(demo_runs: DemoRuns) -> bool:
    """Ready, three masters serving every slot, each with one replica, six pods."""
    stack = _stack(demo_runs)
    block = _redis(stack)
    masters = block.get("slotsPerMaster") or []
    return (
        _ready(stack)
        and len(_pod_ips(demo_runs)) == 6
        and len(masters) == 3
        and sum(m["slots"] for m in masters) == 16384
        and all(len(m["replicas"]) == 1 and not m.get("failing") for m in masters)
    )


async def _check_keys(client: RedisCluster) -> None:
    values = await client.mget_nonatomic([f"heal-test:{n}" for n in range(KEYS)])
    assert values == [f"value {n}" for n in range(KEYS)]


def test_a_dead_master_fails_over_and_a_wiped_pod_rejoins(demo_runs: DemoRuns) -> None:
    node = demo_runs.current.cp.node
    assert node is not None
    try:
        asyncio.run(_kill_and_wipe(demo_runs))
    finally:
        _kubectl(demo_runs, "uncordon", "real-node")


async def _kill_and_wipe(demo_runs: DemoRuns) -> None:
    await _wait("the demo to be whole", lambda: _whole(demo_runs))
    client = _client(demo_runs)
    try:
        for first in range(0, KEYS, 1000):
            await client.mset_nonatomic(
                {f"heal-test:{n}": f"value {n}" for n in range(first, first + 1000)}
            )
        shard = _redis(_stack(demo_runs))["slotsPerMaster"][0]
        victim, heir = shard["master"], shard["replicas"][0]

        # 1. A master's pod dies and cannot come back at once: Redis fails over.
        _kubectl(demo_runs, "cordon", "real-node")
        _kubectl(demo_runs, "delete", "pod", victim, "-n", NAMESPACE, "--wait=false")
        began = time.monotonic()
        await _wait(f"{heir} to take over", lambda: _promoted(demo_runs, heir), seconds=120)
        print(f"{heir} took over {time.monotonic() - began:.0f} s after {victim} was deleted")
        _kubectl(demo_runs, "uncordon", "real-node")
        seconds = await _wait("the stack to be whole again", lambda: _whole(demo_runs))
        print(f"failover: whole and Ready again {seconds:.0f} s after the uncordon")
        last = _redis(_stack(demo_runs)).get("lastFailover") or {}
        assert (last.get("master"), last.get("previousMaster")) == (heir, victim), last
        assert any(heir in m and victim in m for m in _events(demo_runs, "FailoverObserved"))
        back = next(m for m in _redis(_stack(demo_runs))["slotsPerMaster"] if m["master"] == heir)
        assert back["replicas"] == [victim], back
        await _check_keys(client)

        # 2. A master's pod comes back with a new, empty volume.
        wiped = _redis(_stack(demo_runs))["slotsPerMaster"][-1]["master"]
        claim = f"{DATA_VOLUME}-{wiped}"
        old = _claim_uid(demo_runs, claim)
        _kubectl(demo_runs, "delete", "pvc", claim, "-n", NAMESPACE, "--wait=false")
        _kubectl(demo_runs, "delete", "pod", wiped, "-n", NAMESPACE, "--wait=false")
        await _wait(
            f"a new claim for {wiped}", lambda: _claim_uid(demo_runs, claim) not in ("", old), 120
        )
        seconds = await _wait("the stack to be whole again", lambda: _whole(demo_runs))
        print(f"wiped pod {wiped}: whole and Ready again {seconds:.0f} s after its claim was new")
        assert any(wiped in message for message in _events(demo_runs, "NodeReplaced"))
        await _check_keys(client)
        for first in range(0, KEYS, 1000):
            await client.delete(*[f"heal-test:{n}" for n in range(first, first + 1000)])
    finally:
        await client.aclose()


def _promoted(demo_runs: DemoRuns, pod: str) -> bool:
    """Whether ``pod`` says it is a master (ROLE), asked from the host."""
    ip = _pod_ips(demo_runs).get(pod)
    if ip is None:
        return False
    with Redis(host=ip, port=naming.REDIS_CLIENT_PORT, password=_password(demo_runs)) as conn:
        role = conn.execute_command("ROLE")
    return bool(role) and role[0] in (b"master", "master")


def _claim_uid(demo_runs: DemoRuns, claim: str) -> str:
    """The uid of the claim, "" while there is none."""
    found = demo_runs.current.cp.kubectl_run(
        "get", "pvc", claim, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}"
    )
    return found.stdout.strip() if found.returncode == 0 else ""
