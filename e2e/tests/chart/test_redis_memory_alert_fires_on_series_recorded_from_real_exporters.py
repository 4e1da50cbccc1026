"""The Redis memory alert fires on what real redis_exporters say of a real Redis Cluster.

Three cluster nodes with a password, and beside each one Debian's
prometheus-redis-exporter (the program and version of the operator's default
image) started with the arguments and the password variable of the operator's
own sidecar. The test fills the node holding the job stream towards its
maxmemory (Redis never evicts), scraping every exporter after each step; the
recorded samples, one scrape a minute in promtool's time, then feed
``promtool test rules`` over the chart's rendered rules. Only the time scale
is synthetic: every value is one an exporter served. The ``namespace``,
``stack`` and ``pod`` labels are the ones the stack's PodMonitor attaches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.exporter_samples import input_series, scrape
from harness.procs import Proc, start, wait_until
from harness.redis_servers import RedisServer, form_cluster, start_cluster_nodes
from harness.service_base import free_ports, require_binary
from retention_operator.builders import env, naming
from retention_operator.builders import redis as redis_builder
from retention_operator.model import RetentionStack

from .conftest import RuleTests

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

Manifest = dict[str, Any]
PASSWORD = "exporter-test-secret"
MAXMEMORY = 16 * 1024 * 1024
QUIET, BUSY = 8, 10
ALERT = "RetentionRedisMemoryNearLimit"
STACK = {
    "apiVersion": "retention.dev/v1alpha1",
    "kind": "RetentionStack",
    "metadata": {"name": "orders", "namespace": "shop", "uid": "u1", "generation": 1},
    "spec": {
        "api": {"image": "app:1"},
        "workers": {},
        "redis": {"managed": {}},
        "pgbouncer": {
            "database": {"host": "pg", "name": "app", "user": "app"},
            "credentialsSecretRef": {"name": "pg"},
        },
    },
}


def _exporter_argv(stack: RetentionStack, node: RedisServer, port: int) -> tuple[list[str], str]:
    """The sidecar's arguments aimed at ``node``, and the name of its password variable."""
    managed = stack.spec.redis.managed
    assert managed is not None
    container = redis_builder.build_redis_statefulset(stack)["spec"]["template"]["spec"][
        "containers"
    ][1]
    assert container["name"] == naming.EXPORTER_CONTAINER
    args = [
        f"--redis.addr=redis://{node.host}:{node.port}"
        if a.startswith("--redis.addr=")
        else f"--web.listen-address=127.0.0.1:{port}"
        if a.startswith("--web.listen-address=")
        else a
        for a in container["args"]
    ]
    [variable] = [e["name"] for e in container["env"]]
    return [require_binary("prometheus-redis-exporter"), *args], variable


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    nodes = start_cluster_nodes(3, base_dir=tmp_path, password=PASSWORD)
    try:
        form_cluster(nodes, replicas=0)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def exporters(cluster: list[RedisServer], tmp_path: Path) -> Iterator[list[tuple[str, int]]]:
    stack = RetentionStack.model_validate(STACK)
    procs: list[Proc] = []
    ports = free_ports(len(cluster))
    try:
        for index, (node, port) in enumerate(zip(cluster, ports, strict=True)):
            argv, variable = _exporter_argv(stack, node, port)
            proc = start(f"exporter-{index}", argv, log_dir=tmp_path, env={variable: PASSWORD})
            procs.append(proc)
            wait_until(lambda p=port: _up(p), what="redis_exporter up", timeout=20, proc=proc)
        yield [(f"orders-redis-{i}", port) for i, port in enumerate(ports)]
    finally:
        for proc in procs:
            proc.stop()


def _up(port: int) -> bool:
    return scrape(port).get(("redis_up", ())) == 1.0


def _record(
    exporters: list[tuple[str, int]], steps: int, act: Callable[[], None]
) -> list[dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Do ``act`` then scrape every exporter, ``steps`` times; one dict of samples per scrape."""
    out = []
    for _ in range(steps):
        act()
        time.sleep(0.3)
        out.append({(pod, *key): v for pod, port in exporters for key, v in scrape(port).items()})
    return out


def test_memory_near_maxmemory_alerts_for_the_pod_that_holds_it(
    cluster: list[RedisServer],
    exporters: list[tuple[str, int]],
    promtool_test_rules: RuleTests,
    tmp_path: Path,
) -> None:
    stack = RetentionStack.model_validate(STACK)
    stream = env.queue_stream(stack)
    client = redis.RedisCluster(
        host=cluster[0].host, port=cluster[0].port, password=PASSWORD, decode_responses=True
    )
    slot_node = client.get_node_from_key(stream)
    [holder] = [i for i, n in enumerate(cluster) if n.port == slot_node.port]
    client.xadd(stream, {"job": "first"})
    for node in cluster:
        node.client().config_set("maxmemory", MAXMEMORY)

    quiet = _record(exporters, QUIET, lambda: None)
    payload = "x" * 8192

    def fill() -> None:
        # The first step fills the holder to 93 % of maxmemory; then it stays there.
        holder_client = cluster[holder].client()
        while int(holder_client.info("memory")["used_memory"]) < 0.93 * MAXMEMORY:
            pipe = client.pipeline()
            for _ in range(20):
                pipe.xadd(stream, {"job": payload})
            pipe.execute()

    busy = _record(exporters, BUSY, fill)
    samples = quiet + busy

    pods = [pod for pod, _ in exporters]
    series = []
    for pod in pods:
        labels = {"namespace": "shop", "stack": "orders", "pod": pod, "container": "exporter"}
        for name in ("redis_memory_used_bytes", "redis_memory_max_bytes"):
            series.append(input_series(name, labels, [s[(pod, name, ())] for s in samples]))
    ratio = samples[-1][(pods[holder], "redis_memory_used_bytes", ())] / MAXMEMORY
    assert 0.9 < ratio < 1.0, f"the holder's memory reached {ratio:.2f} of maxmemory"
    others = [s[(pods[holder - 1], "redis_memory_used_bytes", ())] for s in samples]
    assert max(others) < 0.5 * MAXMEMORY

    # The other series the dashboard's Redis row reads, as this exporter names them.
    for pod in pods:
        assert samples[-1][(pod, "redis_connected_clients", ())] >= 1
        assert samples[-1][(pod, "redis_commands_processed_total", ())] > 0
    # No exporter asks a key its server does not hold: none logs an error.
    for index in range(len(cluster)):
        log = (tmp_path / f"exporter-{index}.log").read_text()
        assert '"level":"error"' not in log, log[-2000:]

    # The chart's default: above 0.9 of maxmemory for 5m.
    end = f"{len(samples) - 1}m"
    near = {"severity": "warning", "namespace": "shop", "stack": "orders", "pod": pods[holder]}
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{QUIET - 1}m", "alertname": ALERT, "exp_alerts": []},
                {"eval_time": f"{QUIET + 3}m", "alertname": ALERT, "exp_alerts": []},
                {"eval_time": end, "alertname": ALERT, "exp_alerts": [{"exp_labels": near}]},
            ],
        }
    ]
    out = promtool_test_rules(tests)
    assert out.returncode == 0, out.stdout + out.stderr
