"""Facts about the database connection that the builders and the preflight share.

Pure: which ``sslmode`` PgBouncer (and the operator's own checks) use towards
PostgreSQL, and whether a host name is one of the cluster's Services.
"""

from __future__ import annotations

import ipaddress

from retention_operator.model import PgBouncerSpec, SslMode

# Suffixes of names that resolve to a Service of this cluster.
_IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


def in_cluster_host(host: str) -> bool:
    """Return True if ``host`` names a Service of the cluster (``x.ns.svc``, or a short name).

    IP addresses count as outside: nothing tells a pod IP from a hosted database's.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return False
    return host.endswith(_IN_CLUSTER_SUFFIXES) or "." not in host


def server_sslmode(spec: PgBouncerSpec) -> SslMode:
    """Return the sslmode towards PostgreSQL: the spec's, else verify-full with a CA,
    else require for a host outside the cluster, else prefer."""
    tls = spec.tls
    if tls.sslmode is not None:
        return tls.sslmode
    if tls.ca is not None:
        return "verify-full"
    return "prefer" if in_cluster_host(spec.database.host) else "require"
