"""What one Redis node says about the cluster: parsed CLUSTER NODES, CLUSTER INFO, INFO replication.

Pure parsing, no I/O. :mod:`.connection` reads the raw text from a node and builds
a :class:`NodeView`; :mod:`.health` and :mod:`.layout` judge a list of them.
The format is the one documented for CLUSTER NODES:
``<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retention_operator.redis_cluster.slots import SlotRange, count_slots


@dataclass(frozen=True)
class NodeLine:
    """One line of CLUSTER NODES: a node as the reporting node sees it."""

    node_id: str
    address: str
    flags: frozenset[str]
    master_id: str | None
    config_epoch: int
    connected: bool
    slots: tuple[SlotRange, ...]
    #: ``(slot, node id)`` pairs of ``[slot->-id]``: slots this node is migrating to ``id``.
    #: Redis prints them on the reporting node's own line only.
    migrating: tuple[tuple[int, str], ...] = ()
    #: ``(slot, node id)`` pairs of ``[slot-<-id]``: slots this node is importing from ``id``.
    importing: tuple[tuple[int, str], ...] = ()

    @property
    def myself(self) -> bool:
        return "myself" in self.flags

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_replica(self) -> bool:
        # Redis 7 still prints "slave"; "replica" is accepted for forward compatibility.
        return "slave" in self.flags or "replica" in self.flags

    @property
    def in_handshake(self) -> bool:
        # A node in handshake carries a random id that is replaced once the
        # handshake completes, so it is not yet a member.
        return "handshake" in self.flags

    @property
    def failing(self) -> bool:
        """True when the reporting node cannot reach this one or thinks it has failed."""
        return bool(self.flags & {"fail", "fail?", "noaddr"}) or not self.connected

    @property
    def hostname(self) -> str:
        """The announced hostname of ``ip:port@cport,hostname``, or "" if none is announced."""
        return self.address.partition(",")[2]

    @property
    def host(self) -> str:
        """The IP of ``ip:port@cport,hostname``: where the reporting node reaches this one."""
        return self.address.rsplit(":", 1)[0] if ":" in self.address else self.address

    @property
    def bus_port(self) -> int | None:
        """The cluster bus port from ``ip:port@cport``, or None if the address has none."""
        _, _, rest = self.address.partition("@")
        cport = rest.split(",", 1)[0]
        return int(cport) if cport.isdigit() else None


@dataclass(frozen=True)
class NodeView:
    """CLUSTER INFO, CLUSTER NODES and INFO replication of one node, read in one round trip.

    ``replication``: the fields of INFO replication (``master_link_status``,
    ``master_sync_in_progress``, ...); empty when not read.
    """

    info: dict[str, str]
    lines: tuple[NodeLine, ...]
    replication: dict[str, str] = field(default_factory=dict)

    @property
    def me(self) -> NodeLine:
        """The reporting node's own line; ValueError if the output had none."""
        for line in self.lines:
            if line.myself:
                return line
        raise ValueError("CLUSTER NODES has no line flagged myself")

    @property
    def known_ids(self) -> frozenset[str]:
        """Ids of the members this node knows, itself included, handshakes excluded."""
        return frozenset(line.node_id for line in self.lines if not line.in_handshake)

    @property
    def state(self) -> str:
        return self.info.get("cluster_state", "")

    @property
    def slots_assigned(self) -> int:
        return _int(self.info.get("cluster_slots_assigned", "0"))

    @property
    def config_epoch(self) -> int:
        return self.me.config_epoch

    @property
    def synced(self) -> bool:
        """True when this node, a replica, is linked to its master and has its data.

        Redis reports ``master_link_status:up`` only once a sync (full or
        partial) has completed and the link is connected; until a replica's
        first sync completes it counts its data as old since forever and
        cannot fail over (cluster.c, ``clusterHandleSlaveFailover``: data age
        from ``repl_down_since``, 0 until then). A replica whose replication
        was not read counts as not synced.
        """
        return self.replication.get("master_link_status") == "up"

    @property
    def sync_in_progress(self) -> bool:
        """True while a replica reads its master's data (``master_sync_in_progress:1``).

        Not yet during the master's ``repl-diskless-sync-delay``: the master
        answers the replica's PSYNC (``+FULLRESYNC``) only when the transfer
        starts, and the replica is in a transfer only from then on.
        """
        return self.replication.get("master_sync_in_progress") == "1"

    @property
    def link_down_seconds(self) -> int | None:
        """Seconds since a replica's link that was up went down; None if it never came up.

        Redis prints ``master_link_down_since_seconds:-1`` while the link has
        not been up since the node became this master's replica.
        """
        seconds = _int(self.replication.get("master_link_down_since_seconds", "-1") or "-1")
        return seconds if seconds >= 0 else None

    def assigned_ranges(self) -> list[SlotRange]:
        """Every slot range this node believes some master owns."""
        return [rng for line in self.lines if line.is_master for rng in line.slots]

    def owned_slot_count(self) -> int:
        """How many slots this node itself serves as a master."""
        return count_slots(self.me.slots) if self.me.is_master else 0


def parse_cluster_info(text: str) -> dict[str, str]:
    """Parse CLUSTER INFO or INFO text (``key:value`` per line) into a dict of strings.

    Lines without a colon (INFO's ``# Replication`` header) are skipped.
    """
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def parse_cluster_nodes(text: str) -> tuple[NodeLine, ...]:
    """Parse CLUSTER NODES text; lines with fewer than eight fields are skipped.

    Slot migration markers (``[slot->-id]``, ``[slot-<-id]``) go to
    ``migrating`` and ``importing``, not to ``slots``: a slot being migrated is
    still owned by the node that lists it as a range.
    """
    parsed: list[NodeLine] = []
    for raw in text.splitlines():
        fields = raw.split()
        if len(fields) < 8:
            continue
        parsed.append(
            NodeLine(
                node_id=fields[0],
                address=fields[1],
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                config_epoch=_int(fields[6]),
                connected=fields[7] == "connected",
                slots=tuple(_slot_range(item) for item in fields[8:] if not item.startswith("[")),
                migrating=_markers(fields[8:], "->-"),
                importing=_markers(fields[8:], "-<-"),
            )
        )
    return tuple(parsed)


def _slot_range(item: str) -> SlotRange:
    first, _, last = item.partition("-")
    return (int(first), int(last or first))


def _markers(items: list[str], arrow: str) -> tuple[tuple[int, str], ...]:
    """``(slot, id)`` of the ``[slot<arrow>id]`` items."""
    found = []
    for item in items:
        if item.startswith("[") and arrow in item:
            slot, _, node_id = item.strip("[]").partition(arrow)
            found.append((_int(slot), node_id))
    return tuple(found)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0
