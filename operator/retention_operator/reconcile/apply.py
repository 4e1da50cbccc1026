"""Apply one child only when it differs from what was last applied.

Server-side apply is idempotent on the server, but every apply is still a
mutating request. The reconciler stamps each child with the hash of the
manifest it applied (``retention.dev/applied-hash``) and skips the request
when the live object carries the same hash and shows no drift (no field the
manifest sets was changed by hand, see :mod:`.drift`): a no-op reconcile
writes nothing, and a hand edit is put back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from retention_operator import names
from retention_operator.kube import KubeClient, KubeError
from retention_operator.reconcile.drift import drift, replacement_patch

Manifest = dict[str, Any]


def manifest_hash(manifest: Manifest) -> str:
    """Return a stable hash of a manifest (key order does not matter)."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def stamped(manifest: Manifest) -> Manifest:
    """Return a copy of ``manifest`` annotated with its own hash."""
    digest = manifest_hash(manifest)
    meta = dict(manifest.get("metadata", {}))
    meta["annotations"] = {**meta.get("annotations", {}), names.ANNOTATION_APPLIED_HASH: digest}
    return {**manifest, "metadata": meta}


def _applied_hash(live: Manifest | None) -> str | None:
    if live is None:
        return None
    annotations: dict[str, str] = live.get("metadata", {}).get("annotations") or {}
    return annotations.get(names.ANNOTATION_APPLIED_HASH)


@dataclass(frozen=True)
class Ensured:
    """What :func:`ensure` found and did."""

    live: Manifest | None
    """The object as stored after the call."""
    wrote: bool
    """Whether a write was sent."""
    created: bool = False
    """The object did not exist (first creation, or it had been deleted)."""
    restored: tuple[str, ...] = ()
    """Fields changed outside the operator that the write put back."""


async def ensure(
    kube: KubeClient,
    manifest: Manifest,
    *,
    initial_replicas: int | None = None,
) -> Ensured:
    """Make the child match ``manifest`` and say what that took.

    ``initial_replicas``, for the scaled Deployments, is written once, when
    the Deployment is created, under the autoscaler's field manager, so that
    the reconciler never keeps (and never resets) ``spec.replicas``. The
    creating apply carries it too: the Deployment never shows the API server's
    default of one replica (which a tick in between would scale up, with an
    Event and a second ReplicaSet size), and both managers share the field
    until the autoscaler changes it or the reconciler applies again without it.
    Before writing a first size, the server (not the cache) is asked whether
    the Deployment exists.
    """
    meta = manifest["metadata"]
    where = (manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
    live = await kube.get(*where)
    if live is None and initial_replicas is not None:
        # The cache can miss a create whose watch event was lost (the API server
        # gone right after it): a first size written then would reset the
        # autoscaler's replicas. Only the server says it does not exist.
        live = await kube.get(*where, child=False)
    desired = stamped(manifest)
    restored: list[str] = []
    if live is not None and _applied_hash(live) == _applied_hash(desired):
        restored = drift(desired, live)
        if not restored:
            return Ensured(live, wrote=False)
    body = desired
    if live is None and initial_replicas is not None:
        # The hash stays the manifest's (without replicas): the next reconcile compares it.
        body = {**desired, "spec": {**desired.get("spec", {}), "replicas": initial_replicas}}
    try:
        applied = await kube.apply(body, field_manager=names.FIELD_MANAGER)
    except KubeError as exc:
        replacement = replacement_patch(desired, live) if live is not None else None
        if exc.status != 422 or not restored or replacement is None:
            raise
        # A hand edit re-keyed a list item (a Service port): the merge of apply
        # would keep both items. Replace those lists, then apply as usual.
        await kube.replace_lists(desired, replacement, field_manager=names.FIELD_MANAGER)
        applied = await kube.apply(desired, field_manager=names.FIELD_MANAGER)
    if live is None and initial_replicas is not None:
        applied = await _first_size(kube, applied, initial_replicas)
    return Ensured(applied, wrote=True, created=live is None, restored=tuple(restored))


# Writes of a first size refused for a newer version before it is given up (the
# creating apply's replicas stay, and the next tick takes the field). Twice was too few:
# an e2e run saw both refused, each just after a status write of the deployment controller.
FIRST_SIZE_ATTEMPTS = 6


async def _first_size(kube: KubeClient, created: Manifest, replicas: int) -> Manifest:
    """Give the first size of a Deployment just created to the autoscaler's field manager,
    unless the autoscaler has sized it since.

    The write carries the created object's resourceVersion: one retried after the API
    server came back (the client sends a request again when the connection failed) may
    land after a tick has scaled the Deployment, and would put the first size back over
    the tick's. Refused (409), the object is read from the server: if the autoscaler's
    manager owns ``spec.replicas`` it stays as it is; otherwise (a controller's status
    write in between) the size is written again on the version read, up to
    :data:`FIRST_SIZE_ATTEMPTS` times: the deployment controller writes a new
    Deployment's status several times in its first second.
    """
    meta = created["metadata"]
    body: Manifest = {
        "apiVersion": created["apiVersion"],
        "kind": created["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": replicas},
    }
    if meta.get("resourceVersion"):
        body["metadata"]["resourceVersion"] = meta["resourceVersion"]
    for _ in range(FIRST_SIZE_ATTEMPTS):
        try:
            return await kube.apply(body, field_manager=names.AUTOSCALER_FIELD_MANAGER)
        except KubeError as exc:
            if exc.status != 409:
                raise
        live = await kube.get(
            created["apiVersion"], created["kind"], meta["namespace"], meta["name"], child=False
        )
        if live is None or sized_by_autoscaler(live):
            return live or created
        body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    return created


def sized_by_autoscaler(live: Manifest) -> bool:
    """Whether the autoscaler's field manager owns the object's ``spec.replicas``."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") != names.AUTOSCALER_FIELD_MANAGER:
            continue
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" in spec:
            return True
    return False


async def ensure_present(kube: KubeClient, manifest: Manifest) -> tuple[Manifest, bool]:
    """Create ``manifest`` if no object of its name exists; never update it.

    For objects whose content must not change once made (the generated Redis
    password Secret). Returns (live object, whether a write was sent).
    """
    meta = manifest["metadata"]
    live = await kube.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
    if live is not None:
        return live, False
    return await kube.apply(manifest, field_manager=names.FIELD_MANAGER), True


async def create_absent(kube: KubeClient, manifest: Manifest) -> bool:
    """Create ``manifest`` (stamped) unless an object of its name exists; return whether it did.

    A plain create, not an apply: if another writer made the object between
    the read and this call, the API server answers 409 and nothing is overwritten.
    """
    meta = manifest["metadata"]
    live = await kube.get(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
    if live is not None:
        return False
    try:
        await kube.create(stamped(manifest))
    except KubeError as exc:
        if exc.status == 409:
            return False
        raise
    return True
