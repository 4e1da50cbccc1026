"""``python -m bench.reshard [--keys N] [--json]``: a third of the slots moved, ours and redis-cli.

Two runs on real redis-server nodes (loopback), set up alike: two masters
formed by :func:`ensure_cluster` hold every slot and ``--keys`` keys
(16-byte values), and a third, empty node is started. Each run is timed
from there until the three masters hold a third of the slots each with
every key:

- ``operator``: :func:`ensure_cluster` asked for 3 shards, called again
  whenever it returns before the cluster is balanced, as the reconciler
  calls it (it meets the node, then moves 5461 slots with their keys);
- ``redis-cli``: ``redis-cli --cluster add-node``, ``redis-cli --cluster
  check`` until it passes, then ``redis-cli --cluster rebalance
  --cluster-use-empty-masters``, with
  ``--cluster-pipeline`` (keys per MIGRATE) at ``--pipeline`` (default
  1000; redis-cli's own default is 10, which a careful user raises).

Every key is counted on the nodes afterwards, and the slots each master
holds are reported (redis-cli's rebalance stops within its threshold, 2 %
of a share by default; ``ensure_cluster`` within one slot). Bounded: the keys are
written once per run, each run waits at most ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio.cluster import ClusterNode, RedisCluster

from harness.redis_servers import RedisServer, start_cluster_nodes
from harness.service_base import require_binary
from retention_operator.redis_cluster import SLOT_COUNT, cluster_health, ensure_cluster


async def _fill(nodes: list[RedisServer], keys: int) -> None:
    client = RedisCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in nodes])
    try:
        for first in range(0, keys, 5000):
            batch = {f"k:{n}": f"{n:016d}" for n in range(first, min(keys, first + 5000))}
            await client.mset_nonatomic(batch)
    finally:
        await client.aclose()


async def _setup(base: Path, name: str, keys: int) -> list[RedisServer]:
    nodes = start_cluster_nodes(3, base_dir=base, prefix=name)
    addresses = [(n.host, n.port) for n in nodes[:2]]
    health = await ensure_cluster(nodes=addresses, shards=2, replicas_per_shard=0, password=None)
    deadline = time.monotonic() + 30
    while not health.ok and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        health = await cluster_health(nodes=addresses, password=None)
    assert health.ok, health.message
    await _fill(nodes[:2], keys)
    return nodes


async def _spread(nodes: list[RedisServer], seconds: float, *, within: int) -> list[int]:
    """Slots per master once three serve all slots within ``within`` of each other and say ok.

    Raises AssertionError with the last counts seen if that does not happen in ``seconds``.
    """
    addresses = [(n.host, n.port) for n in nodes]
    deadline = time.monotonic() + seconds
    while True:
        health = await cluster_health(nodes=addresses, password=None)
        counts = sorted(shard.slots for shard in health.shards)
        even = len(counts) == 3 and sum(counts) == SLOT_COUNT and counts[2] - counts[0] <= within
        if health.ok and even:
            return counts
        assert time.monotonic() < deadline, f"slots per master: {counts}; {health.message}"
        await asyncio.sleep(0.1)


def _keys(nodes: list[RedisServer]) -> int:
    total = 0
    for node in nodes:
        with node.client() as conn:
            total += int(conn.dbsize())
    return total


async def _ours(nodes: list[RedisServer], seconds: float) -> float:
    """ensure_cluster as the reconciler calls it: again after each return, until balanced."""
    addresses = [(n.host, n.port) for n in nodes]
    began = time.monotonic()
    calls = 0
    while time.monotonic() - began < seconds:
        health = await ensure_cluster(
            nodes=addresses, shards=3, replicas_per_shard=0, password=None
        )
        calls += 1
        if not health.ok:
            print(f"call {calls}: {health.message}", file=sys.stderr)
        if health.ok:
            await _spread(nodes, 0.0, within=1)
            return time.monotonic() - began
    raise AssertionError("ensure_cluster did not balance the slots")


def _redis_cli_steps(nodes: list[RedisServer], pipeline: int, seconds: float) -> None:
    cli = require_binary("redis-cli")
    first, new = f"{nodes[0].host}:{nodes[0].port}", f"{nodes[2].host}:{nodes[2].port}"
    deadline = time.monotonic() + seconds
    _run([cli, "--cluster", "add-node", new, first], seconds)
    # rebalance refuses while the nodes disagree on the configuration, and fails
    # on a node that does not know the new one yet, and the new one refuses keys
    # (CLUSTERDOWN) until it reports ok: wait, as one would by hand, until every
    # node knows it and says ok and `--cluster check` passes.
    check = [cli, "--cluster", "check", first]

    def settled() -> bool:
        infos = [n.cluster_info() for n in nodes]
        known = all(
            i.get("cluster_known_nodes") == "3" and i.get("cluster_state") == "ok" for i in infos
        )
        return known and not subprocess.run(check, capture_output=True, timeout=seconds).returncode

    while not settled():
        if time.monotonic() > deadline:
            raise RuntimeError("redis-cli --cluster check did not pass after add-node")
        time.sleep(0.1)
    rebalance = [cli, "--cluster", "rebalance", first, "--cluster-use-empty-masters"]
    _run([*rebalance, "--cluster-pipeline", str(pipeline)], seconds)


def _run(argv: list[str], seconds: float) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[1:3])} failed: {done.stdout[-500:]}{done.stderr}")


async def _redis_cli(nodes: list[RedisServer], pipeline: int, seconds: float) -> float:
    began = time.monotonic()
    await asyncio.to_thread(_redis_cli_steps, nodes, pipeline, seconds)
    elapsed = time.monotonic() - began
    # rebalance stops within its threshold (2 % of a master's share by default).
    await _spread(nodes, seconds, within=SLOT_COUNT)
    return elapsed


async def _main(args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {"keys": args.keys, "pipeline": args.pipeline}
    seconds_by: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-reshard-") as tmp:
        for name in ("operator", "redis-cli"):
            nodes = await _setup(Path(tmp), name, args.keys)
            try:
                if name == "operator":
                    seconds = await _ours(nodes, args.timeout)
                else:
                    seconds = await _redis_cli(nodes, args.pipeline, args.timeout)
                keys = _keys(nodes)
                assert keys == args.keys, f"{name}: {keys} of {args.keys} keys after the move"
                result[f"{name}_s"] = round(seconds, 2)
                result[f"{name}_slots_per_master"] = await _spread(nodes, 5.0, within=SLOT_COUNT)
                seconds_by[name] = seconds
            finally:
                for node in nodes:
                    node.stop()
    ratio = seconds_by["redis-cli"] / seconds_by["operator"]
    result["ratio_redis_cli_over_operator"] = round(ratio, 2)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reshard", description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--pipeline", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    result = asyncio.run(_main(args))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
