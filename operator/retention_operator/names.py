"""Names that tie the operator's parts together, defined once.

Imported by every layer (model, builders, kube, reconcile, autoscaling,
handlers); it imports nothing, so it sits outside the layering contracts.
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "retention.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "RetentionStack"
PLURAL: Final = "retentionstacks"
SINGULAR: Final = "retentionstack"
SHORT_NAME: Final = "rstack"
CATEGORY: Final = "retention"

# Server-side apply field managers. The reconciler owns everything it builds
# except spec.replicas of the scaled Deployments, which the autoscaler owns.
FIELD_MANAGER: Final = "retention-operator"
AUTOSCALER_FIELD_MANAGER: Final = "retention-autoscaler"

# Labels on every child object.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_STACK: Final = "retention.dev/stack"
PART_OF: Final = "retention-stack"
MANAGED_BY: Final = "retention-operator"

# Components of a stack; also the keys of status.components.
COMPONENT_API: Final = "api"
COMPONENT_WORKERS: Final = "workers"
COMPONENT_REDIS: Final = "redis"
COMPONENT_PGBOUNCER: Final = "pgbouncer"
# The read pool in front of the read replicas; a component of its own so that
# the primary pool's Service never selects its pods.
COMPONENT_PGBOUNCER_RO: Final = "pgbouncer-ro"

# Annotations.
ANNOTATION_CONFIG_HASH: Final = "retention.dev/config-hash"
ANNOTATION_AUTOSCALING_PAUSED: Final = "retention.dev/autoscaling-paused"
# Hash of the manifest the reconciler last applied to a child: equal means no write.
ANNOTATION_APPLIED_HASH: Final = "retention.dev/applied-hash"

# Status condition types and their reasons (CamelCase, kstatus conventions).
CONDITION_READY: Final = "Ready"
CONDITION_RECONCILING: Final = "Reconciling"
CONDITION_STALLED: Final = "Stalled"

# Prometheus Operator's PodMonitor: created per stack when the cluster serves it.
# Its component label; monitoring has no entry in status.components.
COMPONENT_MONITORING: Final = "monitoring"
MONITORING_API_VERSION: Final = "monitoring.coreos.com/v1"
KIND_POD_MONITOR: Final = "PodMonitor"
