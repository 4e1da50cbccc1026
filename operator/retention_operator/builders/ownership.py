"""Owner references that tie children to their RetentionStack.

The reconciler calls ``set_owner_reference`` on every manifest before it
applies it, so Kubernetes' garbage collector deletes the children with the
stack (PVCs follow the StatefulSet's retention policy instead).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from retention_operator import names
from retention_operator.model import StackMeta


def owner_reference(stack_meta: Mapping[str, Any] | StackMeta) -> dict[str, Any]:
    """Return the controller owner reference to a RetentionStack.

    ``stack_meta`` is the stack's metadata (kopf's ``meta`` or ``body["metadata"]``,
    or a parsed ``StackMeta``). Raises ValueError when it has no name or uid: an
    owner reference without a uid would be rejected by the API server.
    """
    meta = stack_meta.model_dump() if isinstance(stack_meta, StackMeta) else stack_meta
    name, uid = meta.get("name"), meta.get("uid")
    if not name or not uid:
        raise ValueError("an owner reference needs the stack's metadata.name and metadata.uid")
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "name": str(name),
        "uid": str(uid),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def set_owner_reference(manifest: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``manifest`` whose metadata.ownerReferences holds ``owner``.

    A reference with the same uid is replaced; references to other owners stay.
    The input is not modified.
    """
    out = copy.deepcopy(dict(manifest))
    meta = out.setdefault("metadata", {})
    others = [ref for ref in meta.get("ownerReferences", []) if ref.get("uid") != owner["uid"]]
    meta["ownerReferences"] = [*others, dict(owner)]
    return out
