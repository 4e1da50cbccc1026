"""One measurement of the tick (a subprocess of ``python -m bench.tick``), as JSON on stdout.

``python -m bench.tick.run --redis-url URL --stacks N`` tracks N stacks (namespace
``bench``, names ``s0000``...) whose queues are the Redis Streams the parent filled, runs
``--warm`` ticks on a clock that moves a tick's length each time (so every history is
as full as after ten minutes of a running operator), then ``--ticks`` measured ones.
It imports ``retention_operator`` from wherever ``PYTHONPATH`` says, so the parent can
measure another revision with the same code around it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

import redis
import redis.utils

from bench.tick.kube import MemoryKube
from retention_operator.autoscaling.loop import AutoscalingLoop
from retention_operator.autoscaling.signals import SignalReader
from retention_operator.settings import Settings

NAMESPACE = "bench"
TICK_SECONDS = 5.0


def stack_body(name: str, redis_url: str) -> dict[str, Any]:
    """A stack as bench.operator applies it: an external Redis, the default stream queue."""
    return {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}"},
        "spec": {
            "api": {"image": "example.invalid/workloads:1", "minReplicas": 2, "maxReplicas": 6},
            "workers": {"minReplicas": 1, "maxReplicas": 8},
            "redis": {"external": {"url": redis_url}},
            "pgbouncer": {
                "replicas": 1,
                "database": {"host": "db.invalid", "name": "app", "user": "app"},
                "credentialsSecretRef": {"name": "db"},
            },
        },
    }


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _redis_cpu(url: str) -> float:
    with redis.Redis.from_url(url) as conn:
        info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def measure(*, redis_url: str, stacks: int, warm: int, ticks: int) -> dict[str, Any]:
    """Warm up, then the CPU seconds of the operator's process per measured tick, of which
    the queue read, its wall time, and the Redis server's CPU per tick."""
    kube = MemoryKube()
    clock = _Clock()
    reader = SignalReader(timeout=30.0, clock=clock)
    loop = AutoscalingLoop(
        kube=kube,  # type: ignore[arg-type]
        settings=Settings(tick_seconds=TICK_SECONDS),
        reader=reader,
        clock=clock,
    )
    for n in range(stacks):
        name = f"s{n:04d}"
        kube.add_deployment(NAMESPACE, f"{name}-api", replicas=2)
        kube.add_deployment(NAMESPACE, f"{name}-workers", replicas=1)
        loop.track(stack_body(name, redis_url))
    for _ in range(warm):
        clock.now += TICK_SECONDS
        await loop.tick()
    read_cpu = 0.0
    read_queues = reader.read_queues

    async def timed_read(queues: Any) -> Any:
        nonlocal read_cpu
        began = time.process_time()
        try:
            return await read_queues(queues)
        finally:
            read_cpu += time.process_time() - began

    reader.read_queues = timed_read  # type: ignore[method-assign]
    writes, errors = kube.writes, 0
    redis_before = _redis_cpu(redis_url)
    cpu, wall = time.process_time(), time.monotonic()
    for _ in range(ticks):
        clock.now += TICK_SECONDS
        errors += (await loop.tick()).errors
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    redis_cpu = _redis_cpu(redis_url) - redis_before
    await loop.stop()
    return {
        "stacks": stacks,
        "ticks": ticks,
        "cpu_s_per_tick": round(cpu / ticks, 4),
        "read_cpu_s_per_tick": round(read_cpu / ticks, 4),
        "wall_s_per_tick": round(wall / ticks, 4),
        "redis_cpu_s_per_tick": round(redis_cpu / ticks, 4),
        "writes_per_tick": round((kube.writes - writes) / ticks, 2),
        "errors": errors,
        "parser": "hiredis" if redis.utils.HIREDIS_AVAILABLE else "python",
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--stacks", type=int, required=True)
    parser.add_argument("--warm", type=int, default=125)
    parser.add_argument("--ticks", type=int, default=10)
    args = parser.parse_args(argv)
    # Each stack logs once that no Prometheus is configured (warm-up): not the tick's cost.
    logging.getLogger().addHandler(logging.NullHandler())
    result = asyncio.run(
        measure(redis_url=args.redis_url, stacks=args.stacks, warm=args.warm, ticks=args.ticks)
    )
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
