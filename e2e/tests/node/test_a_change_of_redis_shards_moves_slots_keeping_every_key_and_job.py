"""The demo's stack patched from 3 to 4 Redis shards and back: no key, stream entry or job lost.

Nothing but the patch: the operator grows the StatefulSet, moves a quarter
of the slots with their keys to the new master, attaches its replica; then
moves them back, lets the two pods leave the cluster, and shrinks the
StatefulSet. Meanwhile the workers consume jobs posted through the API.
Each way the stack's status passes through ``Reconciling`` with reason
``Resharding``: a watch on the stack sees every status write, and the
operator writes one when slots start to move.

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
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _reconciling_seen(demo_runs: DemoRuns) -> Iterator[list[str]]:
    """Every Reconciling=True reason and message of the stack while in the block.

    ``kubectl get --watch -o json`` prints the stack at each write, so no
    status write is missed, however short it stood (with ``-o jsonpath`` it
    prints the first object only). The watch is up (it has printed the stack
    as it is) before the block starts.
    """
    cp = demo_runs.current.cp
    argv = [str(cp.bin_dir / "kubectl"), "--kubeconfig", str(cp.kubeconfig)]
    argv += ["get", "rstack", STACK, "-n", NAMESPACE, "--watch", "-o", "json"]
    chunks: list[str] = []
    watch = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            chunks.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not _objects("".join(chunks)):
            assert watch.poll() is None, f"kubectl --watch exited with {watch.returncode}"
            assert time.monotonic() < deadline, "kubectl --watch printed no object in 30 s"
            time.sleep(0.2)
        seen: list[str] = []
        yield seen
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        reader.join(timeout=10)
    for stack in _objects("".join(chunks)):
        for c in (stack.get("status") or {}).get("conditions", []):
            if c["type"] == "Reconciling" and c["status"] == "True":
                reason = f"{c['reason']}: {c['message']}"
                if reason not in seen:
                    seen.append(reason)


def _objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects printed one after another in ``text`` (a last partial one left out)."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        try:
            obj, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return found
        found.append(obj)


def _ready_at_generation(demo_runs: DemoRuns) -> bool:
    """Ready at the stack's generation."""
    stack = _kubectl_json(demo_runs, "get", "rstack", STACK)
    status = stack.get("status") or {}
    ready = [c for c in status.get("conditions", []) if c["type"] == "Ready"]
    return bool(
        status.get("observedGeneration") == stack["metadata"]["generation"]
        and ready
        and ready[0]["status"] == "True"
    )


async def _wait_shards(demo_runs: DemoRuns, shards: int) -> float:
    """Wait for ``shards`` masters within one slot of even, all pods gone or in, and Ready.

    At the end ``status.redis`` lists the masters, each with its replica.
    """
    began = time.monotonic()
    pods = shards * 2
    while True:
        ready = _ready_at_generation(demo_runs)
        counts = await _masters(demo_runs)
        if (
            len(counts) == shards
            and counts[-1] - counts[0] <= 1
            and len(_pod_ips(demo_runs)) == pods
            and ready
        ):
            block = (_kubectl_json(demo_runs, "get", "rstack", STACK)["status"]).get("redis", {})
            assert (block.get("shards"), block.get("masters")) == (shards, shards), block
            listed = block.get("slotsPerMaster", [])
            assert sorted(m["slots"] for m in listed) == counts, block
            assert all(len(m["replicas"]) == 1 for m in listed), block
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
        with _reconciling_seen(demo_runs) as seen:
            _patch_shards(demo_runs, 4)
            seconds = await _wait_shards(demo_runs, 4)
        print(f"3 -> 4 shards with {KEYS} test keys: Ready again after {seconds:.0f} s")
        print(f"Reconciling on the way to 4 shards: {seen}")
        assert any(
            reason.startswith("Resharding: ") and "slots to shard 4 of 4" in reason
            for reason in seen
        ), seen
        await _check_data(client, pending)

        await jobload.post_jobs(url, JOBS, task=task)
        with _reconciling_seen(demo_runs) as seen:
            _patch_shards(demo_runs, None)
            seconds = await _wait_shards(demo_runs, 3)
        print(f"4 -> 3 shards with {KEYS} test keys: Ready again after {seconds:.0f} s")
        print(f"Reconciling on the way to 3 shards: {seen}")
        assert any(reason.startswith("Resharding: ") for reason in seen), seen
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
