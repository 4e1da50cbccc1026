"""Managed Redis never evicts, and its maxmemory is a share of the container's memory limit.

An evicted entry is a lost job, so the policy is ``noeviction``; a maxmemory
under the cgroup's limit makes a full queue refuse writes instead of the
kernel killing the container.
"""

from __future__ import annotations

import pytest

from retention_operator.builders import quantity, redis

from .conftest import MakeStack


def _args(make_stack: MakeStack, limits: dict[str, object]) -> list[str]:
    stack = make_stack(redis={"managed": {"resources": {"limits": limits}}})
    sts = redis.build_redis_statefulset(stack)
    command: list[str] = sts["spec"]["template"]["spec"]["containers"][0]["command"]
    return command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256Mi", 256 * 2**20),
        ("1Gi", 2**30),
        ("1G", 10**9),
        ("1.5Gi", 3 * 2**29),
        ("1e9", 10**9),
        ("128974848", 128974848),
        (1048576, 1048576),
        ("100m", 1),  # 0.1 byte: rounded up, never to 0
        ("2k", 2000),
    ],
)
def test_quantities_as_bytes(text: int | str, expected: int) -> None:
    assert quantity.to_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "Mi", "1 Gi", "1GB", "1gi", "one"])
def test_a_malformed_quantity_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity.to_bytes(text)


def test_maxmemory_is_three_quarters_of_the_memory_limit(make_stack: MakeStack) -> None:
    command = _args(make_stack, {"memory": "1Gi", "cpu": "1"})
    at = command.index("--maxmemory")
    assert command[at + 1] == str(int(2**30 * redis.MAXMEMORY_SHARE))
    assert int(command[at + 1]) == 805306368


def test_no_memory_limit_sets_no_maxmemory(make_stack: MakeStack) -> None:
    assert "--maxmemory" not in _args(make_stack, {"cpu": "1"})


def test_a_tiny_limit_never_means_unbounded(make_stack: MakeStack) -> None:
    command = _args(make_stack, {"memory": "1"})
    assert command[command.index("--maxmemory") + 1] == "1", "maxmemory 0 is no bound"


def test_redis_never_evicts() -> None:
    assert "maxmemory-policy noeviction" in redis.render_redis_conf().splitlines()
