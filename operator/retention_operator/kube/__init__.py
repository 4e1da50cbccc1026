"""The only code that talks to the Kubernetes API server.

Everything above this layer (reconcile, autoscaling loop) calls these
functions and never sees HTTP. 404 and 409 are ordinary outcomes here, turned
into return values, not exceptions; every other failure is a KubeError. Every
mutating request is counted (by verb and kind) so tests and metrics can prove
that a no-op reconcile sends none.
"""

from retention_operator.kube.client import KubeClient, KubeError, KubeUnreachable, MutationCounter
from retention_operator.kube.connection import Connection, load_connection

__all__ = [
    "Connection",
    "KubeClient",
    "KubeError",
    "KubeUnreachable",
    "MutationCounter",
    "load_connection",
]
