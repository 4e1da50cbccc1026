"""Talking to single Redis nodes: read a node's view of the cluster, send one command.

The only module of the package that opens connections. Every call is bounded
by ``seconds`` (socket timeouts plus an overall deadline, because name
resolution is not covered by socket timeouts) and never raises for network,
authentication or protocol errors: reads return a :class:`Probe` without a
view, writes return the error text. Callers: :mod:`.health`, :mod:`.bootstrap`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from retention_operator.redis_cluster.topology import (
    NodeView,
    parse_cluster_info,
    parse_cluster_nodes,
)

#: A node's address as the caller knows it: pod DNS name or IP, and the client port.
Address = tuple[str, int]

# What a call to a node that is down, slow, unknown or refusing us can raise.
_FAILURES = (RedisError, OSError, TimeoutError, ValueError)


@dataclass(frozen=True)
class Probe:
    """The outcome of reading one node: its view, or why there is none."""

    address: Address
    view: NodeView | None
    error: str = ""

    @property
    def answering(self) -> bool:
        return self.view is not None

    @property
    def label(self) -> str:
        host, port = self.address
        return f"{host}:{port}"


@asynccontextmanager
async def _connect(
    address: Address, *, password: str | None, seconds: float
) -> AsyncIterator[Redis]:
    host, port = address
    # No retries: a node that is down should cost one timeout, not redis-py's backoff.
    client = Redis(
        host=host,
        port=port,
        password=password,
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def probe(address: Address, *, password: str | None, seconds: float) -> Probe:
    """Read CLUSTER INFO, CLUSTER NODES and INFO replication of one node in one round trip.

    Returns a Probe whose ``view`` is None (and ``error`` says why) if the node
    cannot be reached, rejects the password, is not in cluster mode, or does
    not answer within ``seconds``.
    """
    try:
        async with (
            asyncio.timeout(seconds),
            _connect(address, password=password, seconds=seconds) as client,
        ):
            pipe = client.pipeline(transaction=False)
            # Split command names make redis-py hand back the raw text, which
            # is parsed here rather than by version-dependent response callbacks.
            pipe.execute_command("CLUSTER", "INFO")
            pipe.execute_command("CLUSTER", "NODES")
            # Whether a replica is linked and has its data: CLUSTER NODES does not say.
            pipe.execute_command("INFO", "replication")
            info, nodes, replication = await pipe.execute()
        view = NodeView(
            info=parse_cluster_info(str(info)),
            lines=parse_cluster_nodes(str(nodes)),
            replication=_fields(replication),
        )
        view.me  # noqa: B018 - a view without its own line is not a usable answer.
    except _FAILURES as exc:
        return Probe(address=address, view=None, error=_describe(exc))
    return Probe(address=address, view=view)


async def probe_all(
    nodes: Sequence[Address], *, password: str | None, seconds: float
) -> list[Probe]:
    """Probe every node concurrently; the result is in the order of ``nodes``."""
    return list(
        await asyncio.gather(*(probe(node, password=password, seconds=seconds) for node in nodes))
    )


async def send(
    address: Address, *args: str | int, password: str | None, seconds: float
) -> str | None:
    """Send one command to one node; return None on success, else the error text.

    Used for the cluster's configuration commands (MEET, ADDSLOTSRANGE,
    REPLICATE, SET-CONFIG-EPOCH), whose replies are a plain OK.
    """
    try:
        async with (
            asyncio.timeout(seconds),
            _connect(address, password=password, seconds=seconds) as client,
        ):
            # redis-py leaves execute_command unannotated on the asyncio client.
            await client.execute_command(*args)  # type: ignore[no-untyped-call]
    except _FAILURES as exc:
        return _describe(exc)
    return None


async def resolve(address: Address, *, seconds: float) -> str | None:
    """Return an IP address for ``address``'s host, or None if it cannot be resolved.

    CLUSTER MEET takes an IP, while callers pass pod DNS names.
    """
    host, port = address
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return None
    return str(infos[0][4][0]) if infos else None


def _fields(reply: object) -> dict[str, str]:
    """INFO's fields as strings, whether redis-py parsed the reply into a dict or not.

    Nested values (a master's ``slave0:ip=...,state=online``) are left out.
    """
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items() if not isinstance(value, dict)}
    return parse_cluster_info(str(reply))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
