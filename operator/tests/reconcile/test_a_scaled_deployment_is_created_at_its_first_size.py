"""A scaled Deployment is created at its first size, never at the API server's default of one.

Created without ``spec.replicas``, a Deployment shows one replica until the
second apply; an autoscaling tick in between would "scale it up" (a write, an
Event, a second ReplicaSet size). The creating apply carries the first size and
the autoscaler's apply of the same value follows, so the field ends with the
autoscaler; the applied-hash stays the manifest's, so the next reconcile of an
unchanged stack writes nothing and never resets replicas.
"""

from __future__ import annotations

from typing import Any

from retention_operator import names
from retention_operator.kube import KubeError
from retention_operator.reconcile import apply

Manifest = dict[str, Any]


class _Kube:
    """Reads and applies of one Deployment, recorded; ``cached``: what the cache holds
    (the live object when None), as an operator's watch cache that missed an event."""

    def __init__(self, live: Manifest | None = None, *, cache_misses: bool = False) -> None:
        self.live = live
        self.cache_misses = cache_misses
        self.applied: list[tuple[Manifest, str]] = []
        self.server_reads = 0

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str, *, child: bool = True
    ) -> Manifest | None:
        if child and self.cache_misses:
            return None
        self.server_reads += 0 if child else 1
        return self.live

    async def apply(self, manifest: Manifest, *, field_manager: str) -> Manifest:
        self.applied.append((manifest, field_manager))
        live = self.live or {}
        # Merged as the fields of both managers would be (neither unsets the other's).
        meta = {**(live.get("metadata") or {}), **manifest["metadata"]}
        meta["annotations"] = {
            **((live.get("metadata") or {}).get("annotations") or {}),
            **(manifest["metadata"].get("annotations") or {}),
        }
        spec = {**(live.get("spec") or {}), **manifest.get("spec", {})}
        self.live = {**live, **manifest, "metadata": meta, "spec": spec}
        return self.live


def _deployment() -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo-api", "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": "demo"}}, "template": {}},
    }


async def test_the_creating_apply_carries_the_first_size_and_the_autoscaler_takes_it() -> None:
    kube = _Kube()
    ensured = await apply.ensure(kube, _deployment(), initial_replicas=2)  # type: ignore[arg-type]
    (created, manager), (scaled, scaler) = kube.applied
    assert (manager, created["spec"]["replicas"]) == (names.FIELD_MANAGER, 2)
    assert (scaler, scaled["spec"]) == (names.AUTOSCALER_FIELD_MANAGER, {"replicas": 2})
    assert ensured.created and ensured.wrote
    stamp = created["metadata"]["annotations"][names.ANNOTATION_APPLIED_HASH]
    assert stamp == apply.manifest_hash(_deployment())


async def test_an_unchanged_stack_writes_nothing_and_an_existing_one_gets_no_replicas() -> None:
    kube = _Kube()
    await apply.ensure(kube, _deployment(), initial_replicas=2)  # type: ignore[arg-type]
    kube.applied.clear()
    again = await apply.ensure(kube, _deployment(), initial_replicas=2)  # type: ignore[arg-type]
    assert not again.wrote and kube.applied == []
    changed = _deployment()
    changed["spec"]["template"] = {"metadata": {"labels": {"app": "demo", "v": "2"}}}
    await apply.ensure(kube, changed, initial_replicas=2)  # type: ignore[arg-type]
    ((body, manager),) = kube.applied
    assert manager == names.FIELD_MANAGER
    assert "replicas" not in body["spec"]


async def test_a_deployment_the_cache_missed_keeps_the_autoscalers_replicas() -> None:
    # Created, then scaled to 4 by the autoscaler, while the operator's watch was down:
    # the cache never saw it. A retried reconcile must not write the first size over 4.
    existing = _deployment()
    kube = _Kube(cache_misses=True)
    await apply.ensure(kube, existing, initial_replicas=2)  # type: ignore[arg-type]
    assert kube.live is not None
    kube.live["spec"]["replicas"] = 4
    kube.applied.clear()
    changed = _deployment()
    changed["spec"]["template"] = {"metadata": {"labels": {"app": "demo", "v": "2"}}}
    ensured = await apply.ensure(kube, changed, initial_replicas=2)  # type: ignore[arg-type]
    ((body, manager),) = kube.applied
    assert manager == names.FIELD_MANAGER and "replicas" not in body["spec"]
    assert kube.live["spec"]["replicas"] == 4
    assert not ensured.created and kube.server_reads == 2


class _Versioned(_Kube):
    """The fake with resourceVersions and the managers of spec.replicas, as the API server
    keeps them: an apply carrying an old resourceVersion is refused (409)."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0
        self.replica_managers: set[str] = set()
        self.before_first_size: Any = None  # Runs before the autoscaler's first write lands.

    async def apply(self, manifest: Manifest, *, field_manager: str) -> Manifest:
        if field_manager == names.AUTOSCALER_FIELD_MANAGER and self.before_first_size:
            hook, self.before_first_size = self.before_first_size, None
            await hook()
        wanted = manifest["metadata"].get("resourceVersion")
        if wanted is not None and wanted != str(self.version):
            raise KubeError(409, "Conflict", "the object has been modified")
        body = {**manifest, "metadata": {**manifest["metadata"]}}
        body["metadata"].pop("resourceVersion", None)
        live = await super().apply(body, field_manager=field_manager)
        if "replicas" in manifest.get("spec", {}):
            self.replica_managers.add(field_manager)
        self.version += 1
        live["metadata"]["resourceVersion"] = str(self.version)
        live["metadata"]["managedFields"] = [
            {"manager": m, "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            for m in sorted(self.replica_managers)
        ]
        return live


async def test_a_first_size_retried_after_a_tick_leaves_the_ticks_size() -> None:
    """The API server gone between the two applies: the client sends the first size again
    once it is back, after a tick has scaled the Deployment to 4. The first size carries the
    created version, is refused, and the tick's 4 stays."""
    kube = _Versioned()

    async def tick() -> None:
        scale = {**_deployment(), "spec": {"replicas": 4}}
        scale["metadata"] = {"name": "demo-api", "namespace": "ns"}
        await _Versioned.apply(kube, scale, field_manager=names.AUTOSCALER_FIELD_MANAGER)

    kube.before_first_size = tick
    ensured = await apply.ensure(kube, _deployment(), initial_replicas=1)  # type: ignore[arg-type]
    assert kube.live is not None and kube.live["spec"]["replicas"] == 4
    assert ensured.created and apply.sized_by_autoscaler(kube.live)
    assert kube.server_reads == 2  # Absent before the create; sized after the refusal.


async def test_a_first_size_refused_for_a_status_write_is_written_on_the_new_version() -> None:
    kube = _Versioned()

    async def status_write() -> None:
        # A controller's status write in between: a new version, the same spec.
        kube.version += 1
        assert kube.live is not None
        kube.live["metadata"]["resourceVersion"] = str(kube.version)

    kube.before_first_size = status_write
    await apply.ensure(kube, _deployment(), initial_replicas=2)  # type: ignore[arg-type]
    assert kube.live is not None and kube.live["spec"]["replicas"] == 2
    assert names.AUTOSCALER_FIELD_MANAGER in kube.replica_managers


async def test_a_first_size_refused_for_several_status_writes_is_still_written() -> None:
    """The deployment controller writes a new Deployment's status several times in its
    first second: each write of the first size meets a newer version, until one does not."""
    kube = _Versioned()
    refusals = 4  # four status writes in a row: two attempts, as before, gave up

    async def status_write() -> None:
        nonlocal refusals
        kube.version += 1
        assert kube.live is not None
        kube.live["metadata"]["resourceVersion"] = str(kube.version)
        refusals -= 1
        if refusals > 0:
            kube.before_first_size = status_write

    kube.before_first_size = status_write
    await apply.ensure(kube, _deployment(), initial_replicas=2)  # type: ignore[arg-type]
    assert kube.live is not None and kube.live["spec"]["replicas"] == 2
    assert names.AUTOSCALER_FIELD_MANAGER in kube.replica_managers
