"""Real Redis servers for the tests: standalone, and cluster-mode node sets.

A cluster-mode node set is started UNFORMED (every node reports
``cluster_state:fail`` and owns no slots), because the operator's bootstrap
code is tested on exactly that; :func:`form_cluster` forms one with
``redis-cli --cluster create`` for tests that need a working cluster.
Callers: :mod:`harness.fixtures_services` and the tests under e2e/tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness.procs import NotReady, Proc, wait_until
from harness.service_base import free_ports, require_binary, run_checked, start_ready

HOST = "127.0.0.1"


@dataclass
class RedisServer:
    """One redis-server process with its config, data dir and log.

    ``start()`` after ``stop()`` brings it back on the same port with the same
    dir, so a cluster node keeps its nodes.conf (its identity and slots).
    """

    name: str
    port: int
    dir: Path
    log_dir: Path
    password: str | None = None
    cluster_bus_port: int | None = None
    node_timeout_ms: int = 5000
    host: str = HOST
    _proc: Proc | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def config_path(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def cluster_enabled(self) -> bool:
        return self.cluster_bus_port is not None

    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        """Return a new synchronous client of this node (strings decoded, no retries).

        Retries are off so that a stopped node fails a call at once instead of
        after redis-py's backoff; readiness polling does its own retrying.
        """
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    def ping(self) -> bool:
        """Return True if the server answers PING; raise on connection errors."""
        with self.client(timeout=1.0) as conn:
            return bool(conn.ping())

    def cluster_info(self) -> dict[str, str]:
        """Return CLUSTER INFO as a dict of strings; raise if the node is down."""
        with self.client() as conn:
            raw = conn.execute_command("CLUSTER INFO")
        # redis-py parses CLUSTER INFO into a dict; older versions return the text.
        if isinstance(raw, dict):
            return {str(key): str(value) for key, value in raw.items()}
        pairs = (line.split(":", 1) for line in str(raw).splitlines() if ":" in line)
        return {key.strip(): value.strip() for key, value in pairs}

    def cluster_state(self) -> str:
        """Return ``ok`` or ``fail`` from CLUSTER INFO; raise if the node is down."""
        return self.cluster_info().get("cluster_state", "")

    def start(self, *, timeout: float = 15.0) -> None:
        """Start the server (no-op if running) and wait for PING.

        Raises NotReady with the log tail if it exits or does not answer in time.
        """
        if self.running():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        self._proc = start_ready(
            self.name,
            [require_binary("redis-server"), str(self.config_path)],
            log_dir=self.log_dir,
            ready=self.ping,
            what=f"redis {self.name} on port {self.port}",
            timeout=timeout,
            cwd=self.dir,
        )

    def stop(self) -> None:
        """Stop the server and everything in its process group (no-op if stopped)."""
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def kill(self) -> None:
        """SIGKILL the server's process group, as a crash: nothing is saved or handed over."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.popen.pid, signal.SIGKILL)
            self._proc.stop(timeout=5.0)
            self._proc = None

    def _config(self) -> str:
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            f"dir {self.dir}",
            "daemonize no",
            'logfile ""',
            'save ""',
        ]
        if self.password:
            lines += [f"requirepass {self.password}", f"masterauth {self.password}"]
        if self.cluster_bus_port is not None:
            # The bus port is picked explicitly: the default (port + 10000) can
            # be past 65535 or taken when the port comes from the ephemeral range.
            # AOF keeps a restarted master's keys, so "one node restarted" tests
            # see the node come back with its data rather than empty.
            lines += [
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                f"cluster-port {self.cluster_bus_port}",
                f"cluster-node-timeout {self.node_timeout_ms}",
                "appendonly yes",
            ]
        else:
            lines.append("appendonly no")
        return "\n".join(lines) + "\n"


class ClusterNodesFactory(Protocol):
    """What the ``redis_cluster_nodes_factory`` fixture returns: ``(n=6) -> nodes``."""

    def __call__(self, n: int = 6) -> list[RedisServer]: ...


@dataclass
class RedisClusterServers:
    """A formed Redis Cluster made of :class:`RedisServer` nodes."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        """A seed node URL; cluster clients discover the rest from it."""
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    def client(self) -> redis.cluster.RedisCluster:
        """Return a new synchronous cluster client (strings decoded)."""
        # redis-py leaves ClusterNode.__init__ unannotated; the call is still checked by tests.
        seeds = [
            redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in self.startup_nodes
        ]
        return redis.cluster.RedisCluster(
            startup_nodes=seeds, decode_responses=True, socket_timeout=2.0
        )

    def wait_ok(self, *, timeout: float = 30.0) -> None:
        """Wait until every node reports ``cluster_state:ok``; raise NotReady otherwise."""
        wait_cluster_ok(self.nodes, timeout=timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis(*, base_dir: Path, name: str = "redis", password: str | None = None) -> RedisServer:
    """Start a standalone Redis without persistence; data in ``base_dir/name``.

    Raises MissingBinary if redis-server is absent, NotReady if it does not start.
    """
    (port,) = free_ports(1)
    server = RedisServer(
        name=name, port=port, dir=base_dir / name, log_dir=base_dir, password=password
    )
    server.start()
    return server


def start_cluster_nodes(
    count: int = 6,
    *,
    base_dir: Path,
    prefix: str = "redis-node",
    node_timeout_ms: int = 5000,
    password: str | None = None,
) -> list[RedisServer]:
    """Start ``count`` UNFORMED cluster-mode nodes, each with its own dir and nodes.conf.

    If one fails to start, the ones already started are stopped and NotReady
    (or MissingBinary) propagates.
    """
    ports = free_ports(2 * count)
    nodes = [
        RedisServer(
            name=f"{prefix}-{index}",
            port=ports[2 * index],
            cluster_bus_port=ports[2 * index + 1],
            node_timeout_ms=node_timeout_ms,
            dir=base_dir / f"{prefix}-{index}",
            log_dir=base_dir,
            password=password,
        )
        for index in range(count)
    ]
    try:
        for node in nodes:
            node.start()
    except Exception:
        for node in nodes:
            node.stop()
        raise
    return nodes


def form_cluster(
    nodes: list[RedisServer], *, replicas: int = 1, timeout: float = 60.0
) -> RedisClusterServers:
    """Form ``nodes`` into a cluster (``redis-cli --cluster create``) and wait for ok.

    With 6 nodes and ``replicas=1`` that is 3 masters and 3 replicas. Raises
    NotReady with redis-cli's output if forming fails, or with the states seen
    if some node does not report ``cluster_state:ok`` within ``timeout``.
    """
    argv = [require_binary("redis-cli"), "--cluster", "create"]
    argv += [f"{node.host}:{node.port}" for node in nodes]
    argv += ["--cluster-replicas", str(replicas), "--cluster-yes"]
    if nodes[0].password:
        argv += ["-a", nodes[0].password, "--no-auth-warning"]
    run_checked(argv, what="redis-cli --cluster create", timeout=timeout, log=nodes[0].log_path)
    wait_cluster_ok(nodes, timeout=timeout)
    return RedisClusterServers(nodes=list(nodes))


def wait_cluster_ok(nodes: list[RedisServer], *, timeout: float = 30.0) -> None:
    """Wait until every node reports ``cluster_state:ok``.

    Raises NotReady naming each node's last state when the time runs out.
    """
    states: dict[str, str] = {}

    def all_ok() -> bool:
        for node in nodes:
            try:
                states[node.name] = node.cluster_state()
            except redis.RedisError as exc:
                states[node.name] = f"down ({exc})"
        return all(state == "ok" for state in states.values())

    try:
        wait_until(all_ok, what="redis cluster state ok", timeout=timeout, interval=0.2)
    except NotReady as exc:
        raise NotReady(f"{exc}\nstates: {states}") from exc
