"""Labels and object metadata shared by every child of a stack."""

from __future__ import annotations

from typing import Any

from retention_operator import names
from retention_operator.model import RetentionStack


def selector(stack: str, component: str) -> dict[str, str]:
    """Return the labels that select one component's pods.

    Kept to two keys because a Deployment's or StatefulSet's selector is
    immutable: changing it would mean deleting and recreating the object.
    """
    return {names.LABEL_STACK: stack, names.LABEL_COMPONENT: component}


def labels(stack: str, component: str) -> dict[str, str]:
    """Return the full label set of an object (or pod) of one component."""
    return {
        names.LABEL_NAME: f"retention-{component}",
        names.LABEL_INSTANCE: stack,
        names.LABEL_PART_OF: names.PART_OF,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        **selector(stack, component),
    }


def object_meta(
    stack: RetentionStack,
    name: str,
    component: str,
    *,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return ``metadata`` for a namespaced child: name, namespace, labels."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": stack.namespace,
        "labels": labels(stack.name, component),
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta
