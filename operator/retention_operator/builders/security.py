"""Security contexts that pass the Pod Security "restricted" profile.

Every pod the operator builds runs as a non-root user with no privilege
escalation, no capabilities and the runtime's default seccomp profile; root
filesystems are read-only and writable paths are explicit volumes.
"""

from __future__ import annotations

from typing import Any

# A non-root uid for images that carry none we can rely on; numeric so the
# kubelet can verify runAsNonRoot without reading /etc/passwd in the image.
DEFAULT_UID = 65532
# The uid of the "redis" user in the official Redis images.
REDIS_UID = 999


def pod_security_context(uid: int = DEFAULT_UID) -> dict[str, Any]:
    """Return a pod-level securityContext; ``fsGroup`` makes volumes writable by ``uid``."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Return a container-level securityContext (restricted, read-only root)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
