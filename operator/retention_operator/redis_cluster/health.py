"""Health of a managed Redis Cluster, judged from what every node says.

:func:`cluster_health` is what the reconciler calls to fill the Redis part of
a stack's status; :func:`assess` is the pure judgement behind it, also used by
:mod:`.bootstrap` to report the state after a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retention_operator.redis_cluster.connection import Probe, probe_all
from retention_operator.redis_cluster.slots import SLOT_COUNT
from retention_operator.redis_cluster.topology import NodeView


@dataclass(frozen=True)
class ClusterHealth:
    """The state of a Redis Cluster as its nodes report it.

    ``answering``/``total``: nodes that answered CLUSTER INFO and CLUSTER NODES,
    out of those asked. ``formed``: the answering nodes agree on one set of
    exactly ``total`` members and every one of them sees all 16384 slots
    assigned. ``state_ok``: every node answered and reports ``cluster_state:ok``.
    ``masters``: answering nodes that are masters serving at least one slot (a
    fresh, empty node is not counted). ``replicas``: answering nodes that
    replicate a master. ``message``: one sentence, what is awaited or
    ``cluster ok: ...``.
    """

    answering: int
    total: int
    formed: bool
    state_ok: bool
    masters: int
    replicas: int
    message: str

    @property
    def ok(self) -> bool:
        """True when the cluster is formed and every node reports ``cluster_state:ok``."""
        return self.formed and self.state_ok


async def cluster_health(
    *,
    nodes: list[tuple[str, int]],
    password: str | None,
    timeout: float = 2.0,  # noqa: ASYNC109
) -> ClusterHealth:
    """Read every node concurrently and judge the cluster; never raises for I/O errors.

    A node that cannot be reached, rejects ``password`` or does not answer
    within ``timeout`` seconds counts as not answering. Sends no writes.
    """
    probes = await probe_all(nodes, password=password, seconds=timeout)
    return assess(probes)


def assess(
    probes: Sequence[Probe],
    *,
    expected_masters: int | None = None,
    expected_replicas: int | None = None,
) -> ClusterHealth:
    """Judge the cluster from the probes of all its nodes (pure).

    With ``expected_masters``/``expected_replicas`` the message also waits for
    that many masters and replicas; without, any count that is formed is fine.
    """
    views = [probe.view for probe in probes if probe.view is not None]
    masters = sum(1 for view in views if view.owned_slot_count() > 0)
    replicas = sum(1 for view in views if view.me.is_replica)
    formed = is_one_cluster(views, total=len(probes)) and all(
        view.slots_assigned == SLOT_COUNT for view in views
    )
    state_ok = len(views) == len(probes) and all(view.state == "ok" for view in views)
    message = _message(
        probes,
        views,
        masters=masters,
        replicas=replicas,
        expected=(expected_masters, expected_replicas),
    )
    return ClusterHealth(
        answering=len(views),
        total=len(probes),
        formed=formed,
        state_ok=state_ok,
        masters=masters,
        replicas=replicas,
        message=message,
    )


def is_one_cluster(views: Sequence[NodeView], *, total: int) -> bool:
    """True if there are views and all of them know the same ``total`` members."""
    if not views:
        return False
    members = views[0].known_ids
    return len(members) == total and all(view.known_ids == members for view in views)


def _message(
    probes: Sequence[Probe],
    views: Sequence[NodeView],
    *,
    masters: int,
    replicas: int,
    expected: tuple[int | None, int | None],
) -> str:
    total = len(probes)
    if len(views) < total:
        silent = ", ".join(probe.label for probe in probes if not probe.answering)
        return f"{len(views)}/{total} Redis nodes answering; waiting for {silent}."
    largest = max(len(view.known_ids) for view in views)
    if largest > total:
        return (
            f"The nodes know {largest} cluster members but {total} were given; "
            "waiting for the stale members to be forgotten (CLUSTER FORGET)."
        )
    if not is_one_cluster(views, total=total):
        smallest = min(len(view.known_ids) for view in views)
        return f"Waiting for all {total} nodes to know each other (one knows only {smallest})."
    assigned = min(view.slots_assigned for view in views)
    if assigned < SLOT_COUNT:
        return f"Waiting for slot assignment: {assigned} of {SLOT_COUNT} slots assigned."
    want_masters, want_replicas = expected
    if want_masters is not None and masters != want_masters:
        return f"Waiting for masters: {masters} of {want_masters} serve slots."
    if want_replicas is not None and replicas != want_replicas:
        return f"Waiting for replicas: {replicas} of {want_replicas} attached."
    failing = [probe.label for probe in probes if probe.view and probe.view.state != "ok"]
    if failing:
        return f"Waiting for cluster_state:ok on {', '.join(failing)}."
    shards_text = _counted(masters, "shard")
    return f"cluster ok: {shards_text}, {_counted(replicas, 'replica')}, {SLOT_COUNT} slots"


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
