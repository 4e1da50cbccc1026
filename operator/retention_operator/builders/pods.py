"""Pieces of pod templates shared by the builders."""

from __future__ import annotations

from typing import Any

from retention_operator.model import ResourceRequirements


def resources(spec: ResourceRequirements) -> dict[str, Any]:
    """Return a container's ``resources``; empty maps are left out."""
    out: dict[str, Any] = {}
    if spec.requests:
        out["requests"] = dict(spec.requests)
    if spec.limits:
        out["limits"] = dict(spec.limits)
    return out


def empty_dir(name: str, *, memory: bool = False) -> dict[str, Any]:
    """Return an emptyDir volume; ``memory`` keeps its content off the node's disk."""
    source: dict[str, Any] = {"medium": "Memory"} if memory else {}
    return {"name": name, "emptyDir": source}


def tcp_probe(port: str | int, *, period: int = 10) -> dict[str, Any]:
    """Return a TCP socket probe on a named or numbered port."""
    return {"tcpSocket": {"port": port}, "periodSeconds": period, "failureThreshold": 3}


def startup_probe(port: str | int) -> dict[str, Any]:
    """Return a TCP startup probe: up to 3 minutes to listen before liveness counts.

    Without it the liveness probe (3 failures, 10-15 s apart) killed containers
    that were still starting on a busy node: a Python process importing its
    libraries beside ten others on two cores took over 30 s to listen, and its
    restart dropped the requests it had just begun to serve.
    """
    return {"tcpSocket": {"port": port}, "periodSeconds": 2, "failureThreshold": 90}


def http_probe(path: str, port: str | int, *, period: int = 10) -> dict[str, Any]:
    """Return an HTTP GET probe."""
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": 3,
    }


def pod_disruption_budget(meta: dict[str, Any], match_labels: dict[str, str]) -> dict[str, Any]:
    """Return a PDB that lets one pod of the selection go at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta,
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": match_labels}},
    }
