"""Moving hash slots between masters with their keys, as ``redis-cli --cluster reshard`` does.

The order per slot is redis-cli's (``clusterManagerMoveSlot`` in
``src/redis-cli.c``, Redis 7.0):

1. ``CLUSTER SETSLOT <slot> IMPORTING <source>`` on the target, then
   ``MIGRATING <target>`` on the source. From then on the source serves the
   keys it still has and sends clients ASK for the others, so no write is lost
   and none lands twice.
2. ``CLUSTER GETKEYSINSLOT`` on the source and ``MIGRATE ... KEYS`` of what it
   returns, until the slot is empty on the source. While a slot is MIGRATING
   the source creates no new key in it, so an empty answer stays empty.
3. ``CLUSTER SETSLOT <slot> NODE <target>`` on the target first (it bumps its
   config epoch, so its claim wins), then on the source, then on every other
   master. A source that gave its last slot turns itself into a replica of
   the target, and refuses the command with "Please use SETSLOT only with
   masters", which is expected.

Unlike redis-cli, a batch of slots between the same two nodes shares each
round trip (the SETSLOTs and the MIGRATEs, one per slot since a node
refuses keys of several slots in one, are pipelined), which is what makes
a third of the slots move in seconds rather than minutes. MIGRATE always
says REPLACE: while the slot is open, a key that still exists on the source
is the one clients wrote to, so a copy on the target (left by a MIGRATE
whose reply was lost) is stale.

Callers: :mod:`.converge`. The password goes into MIGRATE's AUTH and never
into a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from retention_operator.redis_cluster.connection import Address

logger = logging.getLogger(__name__)

#: Keys asked of GETKEYSINSLOT per slot and round trip.
KEYS_PER_SLOT = 200
#: Keys per MIGRATE command; MIGRATE blocks both nodes while it runs.
KEYS_PER_MIGRATE = 200
#: MIGRATE's own I/O timeout towards the target, in milliseconds.
MIGRATE_TIMEOUT_MS = 10_000
# A source that lost its last slot has turned into a replica: not an error.
_NOW_A_REPLICA = "Please use SETSLOT only with masters"


class MoveError(Exception):
    """A node refused a step of a move; the message names the node, the command and why."""


@dataclass(frozen=True)
class Endpoint:
    """A master as a move needs it: where the operator reaches it, and its node id."""

    address: Address
    node_id: str
    #: The IP the other node dials for MIGRATE (a pod IP; the address may be a name).
    ip: str


@dataclass
class Sessions:
    """One connection per node for the length of a run, closed by :meth:`close`."""

    password: str | None
    seconds: float
    _clients: dict[Address, Redis] = field(default_factory=dict)

    def client(self, address: Address) -> Redis:
        if address not in self._clients:
            host, port = address
            self._clients[address] = Redis(
                host=host,
                port=port,
                password=self.password,
                socket_timeout=self.seconds + MIGRATE_TIMEOUT_MS / 1000,
                socket_connect_timeout=self.seconds,
                retry=Retry(NoBackoff(), 0),
            )
        return self._clients[address]

    async def pipeline(
        self, address: Address, commands: Sequence[Sequence[object]]
    ) -> list[object]:
        """Send ``commands`` in one round trip; each result is a reply or the exception it raised.

        Raises MoveError when the node cannot be reached at all.
        """
        if not commands:
            return []
        pipe = self.client(address).pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        try:
            async with asyncio.timeout(self.seconds + MIGRATE_TIMEOUT_MS / 1000):
                return list(await pipe.execute(raise_on_error=False))
        except (RedisError, OSError, TimeoutError) as exc:
            raise MoveError(f"{_label(address)} did not answer: {exc}") from exc

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def move_slots(
    sessions: Sessions,
    *,
    source: Endpoint,
    target: Endpoint,
    slots: Sequence[int],
    others: Iterable[Address],
) -> int:
    """Move ``slots`` from ``source`` to ``target`` with their keys; return how many keys moved.

    ``others`` are the remaining masters, told the new owner last. Every
    step is idempotent, so a batch interrupted anywhere is finished by
    calling this again with the same slots. Raises MoveError when a node
    refuses a step in a way that is not the expected end of a move.
    """
    await _open(sessions, source=source, target=target, slots=slots)
    moved = await _migrate_keys(sessions, source=source, target=target, slots=slots)
    await assign_owner(sessions, owner=target, slots=slots, source=source, others=others)
    return moved


async def _open(
    sessions: Sessions, *, source: Endpoint, target: Endpoint, slots: Sequence[int]
) -> None:
    importing = [("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id) for slot in slots]
    _check(target.address, await sessions.pipeline(target.address, importing))
    migrating = [("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id) for slot in slots]
    _check(source.address, await sessions.pipeline(source.address, migrating))


async def _migrate_keys(
    sessions: Sessions, *, source: Endpoint, target: Endpoint, slots: Sequence[int]
) -> int:
    moved = 0
    pending = list(slots)
    while pending:
        asks = [("CLUSTER", "GETKEYSINSLOT", slot, KEYS_PER_SLOT) for slot in pending]
        replies = _check(source.address, await sessions.pipeline(source.address, asks))
        # A cluster node refuses a MIGRATE whose keys are in different slots,
        # so each slot's keys go in a MIGRATE of their own, all in one round trip.
        chunks: list[list[bytes]] = []
        full: list[int] = []
        for slot, reply in zip(pending, replies, strict=True):
            found = list(reply) if isinstance(reply, list) else []
            chunks += [
                found[first : first + KEYS_PER_MIGRATE]
                for first in range(0, len(found), KEYS_PER_MIGRATE)
            ]
            if len(found) >= KEYS_PER_SLOT:
                full.append(slot)
        await _migrate(sessions, source=source, target=target, chunks=chunks)
        moved += sum(len(chunk) for chunk in chunks)
        # A slot that gave fewer keys than asked for is empty now: no key is
        # created in a MIGRATING slot, and those it gave have moved.
        pending = full
    return moved


async def _migrate(
    sessions: Sessions, *, source: Endpoint, target: Endpoint, chunks: Sequence[Sequence[bytes]]
) -> None:
    """One ``MIGRATE ... KEYS`` per chunk (each of one slot), pipelined to the source."""
    head: list[object] = ["MIGRATE", target.ip, target.address[1], "", 0, MIGRATE_TIMEOUT_MS]
    head.append("REPLACE")
    if sessions.password:
        head += ["AUTH", sessions.password]
    commands = [[*head, "KEYS", *chunk] for chunk in chunks if chunk]
    for reply in await sessions.pipeline(source.address, commands):
        if isinstance(reply, Exception) and "NOKEY" not in str(reply):
            # The text never includes the command, so the password stays out of it.
            raise MoveError(f"MIGRATE from {_label(source.address)} to {target.ip}: {reply}")


async def assign_owner(
    sessions: Sessions,
    *,
    owner: Endpoint,
    slots: Sequence[int],
    source: Endpoint | None,
    others: Iterable[Address],
) -> None:
    """``CLUSTER SETSLOT <slot> NODE <owner>`` on the owner, then the source, then the others."""
    command = [("CLUSTER", "SETSLOT", slot, "NODE", owner.node_id) for slot in slots]
    _check(owner.address, await sessions.pipeline(owner.address, command))
    if source is not None:
        replies = await sessions.pipeline(source.address, command)
        _check(source.address, replies, tolerate=_NOW_A_REPLICA)
    rest = [
        address
        for address in others
        if address not in {owner.address, getattr(source, "address", None)}
    ]
    answers = await asyncio.gather(*(sessions.pipeline(address, command) for address in rest))
    for address, replies in zip(rest, answers, strict=True):
        # A master that turned replica meanwhile learns the owner by gossip.
        _check(address, replies, tolerate=_NOW_A_REPLICA)


async def set_stable(sessions: Sessions, address: Address, slots: Sequence[int]) -> None:
    """Close ``slots`` on one node (``CLUSTER SETSLOT <slot> STABLE``): a move is rolled back."""
    command = [("CLUSTER", "SETSLOT", slot, "STABLE") for slot in slots]
    _check(address, await sessions.pipeline(address, command), tolerate=_NOW_A_REPLICA)


async def count_keys(sessions: Sessions, address: Address, slots: Sequence[int]) -> list[int]:
    """``CLUSTER COUNTKEYSINSLOT`` of each slot on one node."""
    command = [("CLUSTER", "COUNTKEYSINSLOT", slot) for slot in slots]
    return [int(str(reply)) for reply in _check(address, await sessions.pipeline(address, command))]


def _check(address: Address, replies: list[object], *, tolerate: str = "") -> list[object]:
    for reply in replies:
        if isinstance(reply, Exception) and not (tolerate and tolerate in str(reply)):
            raise MoveError(f"{_label(address)} refused a slot move: {reply}")
    return replies


def _label(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
