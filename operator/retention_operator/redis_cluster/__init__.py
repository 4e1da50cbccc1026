"""Bootstrap and health of a managed Redis Cluster.

The reconciler passes the node addresses (pod ordinal order) and the
password; nothing here knows about Kubernetes. :func:`cluster_health` reads,
:func:`ensure_cluster` forms the cluster if needed and never loses data;
:func:`slot_ranges` is the even split of the hash slots they share.
"""

from retention_operator.redis_cluster.bootstrap import ensure_cluster
from retention_operator.redis_cluster.health import ClusterHealth, cluster_health
from retention_operator.redis_cluster.slots import SLOT_COUNT, slot_ranges

__all__ = ["SLOT_COUNT", "ClusterHealth", "cluster_health", "ensure_cluster", "slot_ranges"]
