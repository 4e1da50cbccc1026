"""The demo's stack patched from 3 to 4 Redis shards and back: no key, stream entry or job lost.

Nothing but the patch: the operator grows the StatefulSet, moves a quarter
of the slots with their keys to the new master, attaches its replica; then
moves them back, lets the two pods leave the cluster, and shrinks the
StatefulSet. Meanwhile the workers consume jobs posted through the API.

The host reaches the pods directly (routes via the real node's veth); the
cluster announces hostnames, so the test's client maps them to pod IPs. The
stack is put back as it was: 3 shards, and the two volumes the scale-in
kept (empty, their pods left the cluster) deleted, so the tests after this
one find the demo as it started.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness import demo, jobload
from harness.fixtures_node import DemoRuns
from retention_operator import names
from retention_operator.builders import naming
from retention_operator.redis_cluster.slots import count_slots
from retention_operator.redis_cluster.topology import parse_cluster_nodes

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]
NAMESPACE = STACK = "demo"
KEYS = 10_000
STREAM, GROUP = "{scale-test}:stream", "readers"
ENTRIES, READ = 200, 80
JOBS = 150
RESHARD_TIMEOUT_S = 300


def _kubectl_json(demo_runs: DemoRuns, *args: str) -> Any:
    return json.loads(demo_runs.current.cp.kubectl(*args, "-n", NAMESPACE, "-o", "json"))


def _pod_ips(demo_runs: DemoRuns) -> dict[str, str]:
    selector = f"{names.LABEL_STACK}={STACK},{names.LABEL_COMPONENT}={names.COMPONENT_REDIS}"
    pods = _kubectl_json(demo_runs, "get", "pods", "-l", selector)["items"]
    return {
        pod["metadata"]["name"]: pod["status"]["podIP"]
        for pod in pods
        if pod.get("status", {}).get("podIP")
    }


def _password(demo_runs: DemoRuns) -> str:
    secret = _kubectl_json(demo_runs, "get", "secret", naming.redis_auth(STACK))
    return base64.b64decode(secret["data"][naming.REDIS_PASSWORD_KEY]).decode()


def _client(demo_runs: DemoRuns) -> RedisCluster:
    password = _password(demo_runs)
    ips = _pod_ips(demo_runs)

    def remap(address: tuple[str, int]) -> tuple[str, int]:
        # The nodes announce "<pod>.<headless service>..."; the host knows pod IPs only.
        pod = address[0].split(".")[0]
        if pod not in ips:
            ips.update(_pod_ips(demo_runs))
        return (ips.get(pod, address[0]), address[1])

    first = ips[f"{naming.redis(STACK)}-0"]
    return RedisCluster(
        startup_nodes=[ClusterNode(first, naming.REDIS_CLIENT_PORT)],
        password=password,
        decode_responses=True,
        address_remap=remap,
    )


def _patch_shards(demo_runs: DemoRuns, shards: int | None) -> None:
    patch = json.dumps({"spec": {"redis": {"managed": {"shards": shards}}}})
    demo_runs.current.cp.kubectl(
        "patch", "rstack", STACK, "-n", NAMESPACE, "--type=merge", "-p", patch
    )


async def _masters(demo_runs: DemoRuns) -> list[int]:
    """How many slots each serving master holds, as pod 0 reports it (CLUSTER NODES)."""
    pod0 = _pod_ips(demo_runs)[f"{naming.redis(STACK)}-0"]
    conn = Redis(host=pod0, port=naming.REDIS_CLIENT_PORT, password=_password(demo_runs))
    try:
        text = await conn.execute_command("CLUSTER", "NODES")
    finally:
        await conn.aclose()
    raw = text.decode() if isinstance(text, bytes) else str(text)
    lines = parse_cluster_nodes(raw)
    return sorted(count_slots(line.slots) for line in lines if line.is_master and line.slots)


def _ready_at_generation(demo_runs: DemoRuns) -> bool:
    stack = _kubectl_json(demo_runs, "get", "rstack", STACK)
    status = stack.get("status") or {}
    ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
    return bool(
        status.get("observedGeneration") == stack["metadata"]["generation"]
        and ready
        and ready[0]["status"] == "True"
    )


async def _wait_shards(demo_runs: DemoRuns, shards: int) -> float:
    """Wait for ``shards`` masters within one slot of even, all pods gone or in, and Ready."""
    began = time.monotonic()
    pods = shards * 2
    while True:
        counts = await _masters(demo_runs)
        if (
            len(counts) == shards
            and counts[-1] - counts[0] <= 1
            and len(_pod_ips(demo_runs)) == pods
            and _ready_at_generation(demo_runs)
        ):
            return time.monotonic() - began
        elapsed = time.monotonic() - began
        assert elapsed < RESHARD_TIMEOUT_S, f"not {shards} balanced shards: {counts}"
        await asyncio.sleep(2)


async def _check_data(client: RedisCluster, pending: list[str]) -> None:
    values = await client.mget_nonatomic([f"scale-test:{n}" for n in range(KEYS)])
    assert values == [f"value {n}" for n in range(KEYS)]
    assert await client.xlen(STREAM) == ENTRIES
    entries = await client.xpending_range(STREAM, GROUP, "-", "+", ENTRIES)
    assert [entry["message_id"] for entry in entries] == pending


def test_four_shards_and_back_keep_every_key_entry_and_job(demo_runs: DemoRuns) -> None:
    try:
        asyncio.run(_scale_and_check(demo_runs))
    finally:
        _put_back(demo_runs)


async def _scale_and_check(demo_runs: DemoRuns) -> None:
    current = demo_runs.current
    url = demo.service_url(current.cp, "demo-api")
    task = f"reshard-{uuid.uuid4().hex[:8]}"
    client = _client(demo_runs)
    try:
        for first in range(0, KEYS, 1000):
            batch = {f"scale-test:{n}": f"value {n}" for n in range(first, first + 1000)}
            await client.mset_nonatomic(batch)
        await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        for n in range(ENTRIES):
            await client.xadd(STREAM, {"n": str(n)})
        await client.xreadgroup(GROUP, "reader-1", {STREAM: ">"}, count=READ)
        pending = [
            e["message_id"] for e in await client.xpending_range(STREAM, GROUP, "-", "+", ENTRIES)
        ]
        assert len(pending) == READ

        await jobload.post_jobs(url, JOBS, task=task)
        _patch_shards(demo_runs, 4)
        seconds = await _wait_shards(demo_runs, 4)
        print(f"3 -> 4 shards with {KEYS} test keys: Ready again after {seconds:.0f} s")
        await _check_data(client, pending)

        await jobload.post_jobs(url, JOBS, task=task)
        _patch_shards(demo_runs, None)
        seconds = await _wait_shards(demo_runs, 3)
        print(f"4 -> 3 shards with {KEYS} test keys: Ready again after {seconds:.0f} s")
        await _check_data(client, pending)

        found = jobload.wait_rows(current.postgres, task, 2 * JOBS, timeout=120)
        assert found == (2 * JOBS, 2 * JOBS), found
        await client.delete(STREAM)
        for first in range(0, KEYS, 1000):
            await client.delete(*[f"scale-test:{n}" for n in range(first, first + 1000)])
    finally:
        await client.aclose()


def _put_back(demo_runs: DemoRuns) -> None:
    """3 shards again (also after a failure), and the two kept volumes of pods 6 and 7 gone."""
    _patch_shards(demo_runs, None)
    deadline = time.monotonic() + RESHARD_TIMEOUT_S
    while len(_pod_ips(demo_runs)) > 6 and time.monotonic() < deadline:
        time.sleep(2)
    for ordinal in (6, 7):
        demo_runs.current.cp.kubectl(
            "delete", "pvc", f"data-{naming.redis(STACK)}-{ordinal}", "-n", NAMESPACE,
            "--ignore-not-found", timeout=120,
        )  # fmt: skip
