"""A managed Redis Cluster through its whole life: formed, grown, shrunk, healed.

The reconciler passes the node addresses (pod ordinal order) and the
password; nothing here knows about Kubernetes. :func:`cluster_health` reads
(the status); :func:`ensure_cluster` brings the cluster to the shape asked
for and never loses data; :func:`.layout.plan_layout` is the pure plan both
go by; :func:`slot_ranges` is the even split of a fresh cluster.
"""

from retention_operator.redis_cluster.converge import Notice, ensure_cluster
from retention_operator.redis_cluster.health import (
    ClusterHealth,
    Shape,
    ShardHealth,
    cluster_health,
)
from retention_operator.redis_cluster.slots import SLOT_COUNT, slot_ranges

__all__ = [
    "SLOT_COUNT",
    "ClusterHealth",
    "Notice",
    "Shape",
    "ShardHealth",
    "cluster_health",
    "ensure_cluster",
    "slot_ranges",
]
