"""The stacks' children in memory, kept current by list-then-watch (an informer).

One watch per kind of child (and per namespace when the operator serves a
list of namespaces), filtered on the server by the ``retention.dev/stack``
label, so the cache holds the operator's children and nothing else.
:class:`~retention_operator.kube.client.KubeClient` answers ``get`` and
``list`` of these kinds from here once every first list is in (as
controller-runtime's client reads from its informers): a no-op reconcile of a
thousand stacks sends no request for its children, and the autoscaling tick
lists no Deployments. Listeners hear of every change, which is how a child
edited or deleted by hand is noticed at once.

Objects are stored without ``managedFields`` and kubectl's last-applied
annotation (the bulk of a stored object that nobody here reads), and must be
treated as read-only by callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from retention_operator.kube.client import Answer, KubeError, error_of, session
from retention_operator.kube.connection import Connection
from retention_operator.kube.resources import Resource, resource

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]
Key = tuple[str, str, str]  # (kind, namespace, name)
Listener = Callable[[str, Manifest | None, Manifest | None], None]
"""Called as ``listener(kind, old, new)``; ``new`` is None when the object went away."""

# The kinds of the stacks' children (the generated Redis Secret is left out on
# purpose: the operator never rewrites it, and its value has no place in memory).
WATCHED_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)
PAGE_SIZE = 500
WATCH_SECONDS = 300
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


class _Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


@dataclass(frozen=True)
class _Scope:
    res: Resource
    namespace: str | None

    def holds(self, key: Key) -> bool:
        return key[0] == self.res.kind and (self.namespace is None or key[1] == self.namespace)

    def __str__(self) -> str:
        return f"{self.res.plural} in {self.namespace or 'every namespace'}"


def trimmed(obj: Manifest, res: Resource) -> Manifest:
    """The object as cached: kind and apiVersion set, managedFields and last-applied gone."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and any(a in annotations for a in _DROPPED_ANNOTATIONS):
        meta["annotations"] = {
            k: v for k, v in annotations.items() if k not in _DROPPED_ANNOTATIONS
        }
    return {**obj, "apiVersion": res.api_version, "kind": res.kind, "metadata": meta}


def _key(obj: Manifest) -> Key:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))


def _version(obj: Manifest | None) -> int | None:
    raw = str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
    return int(raw) if raw.isdigit() else None


def _older(candidate: Manifest, stored: Manifest | None) -> bool:
    """Whether ``candidate`` is an older version than ``stored`` of the same object.

    resourceVersions are etcd revisions: integers that only grow. Should one
    not be an integer, the newcomer wins (as in client-go's informers).
    """
    new, old = _version(candidate), _version(stored)
    return new is not None and old is not None and new < old


Terms = list[tuple[str, str | None]]


def parse_selector(selector: str) -> Terms | None:
    """``k`` / ``k=v`` / ``k==v`` terms of an equality selector; None for anything else
    (``!``, ``in``, ``notin``, ``!=``), which the caller leaves to the server."""
    terms: Terms = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if any(op in term for op in ("!", " in ", " notin ", "(")):
            return None
        key, sep, value = term.partition("=")
        terms.append((key.strip(), value.strip().lstrip("=").strip() if sep else None))
    return terms


def _match(labels: dict[str, str], terms: Terms) -> bool:
    return all(
        (key in labels) if value is None else labels.get(key) == value for key, value in terms
    )


def matches(labels: dict[str, str], selector: str) -> bool | None:
    """Whether ``labels`` match an equality selector; None when it is not one."""
    terms = parse_selector(selector)
    return None if terms is None else _match(labels, terms)


class ChildCache:
    """A label-filtered informer over the children's kinds; see the module docstring."""

    def __init__(
        self,
        connection: Connection,
        *,
        label_selector: str,
        namespaces: Iterable[str] = (),
        kinds: Iterable[tuple[str, str]] = WATCHED_KINDS,
        page_size: int = PAGE_SIZE,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self._connection = connection
        self._selector = label_selector
        self._page_size = page_size
        self._watch_seconds = watch_seconds
        spaces: list[str | None] = list(namespaces) or [None]
        self._scopes = [_Scope(resource(v, k), ns) for v, k in kinds for ns in spaces]
        self._kinds = {(v, k) for v, k in kinds}
        # Per kind, then per namespace, so that a list of one kind in one namespace
        # walks neither the other kinds nor the other namespaces.
        self._store: defaultdict[str, defaultdict[str, dict[str, Manifest]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        # Every cached object matches the cache's own selector: a list asking no more
        # than that is answered without matching each object's labels. The selector's
        # first key is the one that names a child's stack.
        own_terms = parse_selector(label_selector)
        if not own_terms:
            raise ValueError(
                f"the child cache's selector {label_selector!r} is not an equality selector "
                "(k=v,...) with at least one term, so the cache could not tell its own objects"
            )
        self._own_terms = own_terms
        self._stack_label = own_terms[0][0]
        self._by_stack: defaultdict[tuple[str, str], set[Key]] = defaultdict(set)
        self._listeners: list[Listener] = []
        self._synced = {scope: asyncio.Event() for scope in self._scopes}
        self._failure: KubeError | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None
        # A watch sends nothing for a while, then an event: the read deadline is
        # the server's own timeout and some; the list of a page has the usual one.
        self._watch_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=30, sock_read=watch_seconds + 30
        )
        self._list_timeout = aiohttp.ClientTimeout(total=120)

    # --- Reading ----------------------------------------------------------------------------

    def covers(self, api_version: str, kind: str) -> bool:
        """Whether reads of this kind can be answered here (watched and fully listed)."""
        return (api_version, kind) in self._kinds and self.synced

    @property
    def synced(self) -> bool:
        return all(event.is_set() for event in self._synced.values())

    def get(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        """The cached object, or None when no labelled object of that name exists."""
        return self._store[kind].get(namespace or "", {}).get(name)

    def select(
        self, kind: str, namespace: str | None, *, label_selector: str | None = None
    ) -> list[Manifest] | None:
        """Cached objects of a kind (in a namespace, or all); None for a selector too complex."""
        terms = parse_selector(label_selector) if label_selector else []
        if terms is None:
            return None
        terms = [term for term in terms if term not in self._own_terms]
        spaces = self._store[kind]
        found = (
            list(spaces.get(namespace, {}).values())
            if namespace
            else [obj for objects in spaces.values() for obj in objects.values()]
        )
        if not terms:
            return found
        return [o for o in found if _match((o.get("metadata") or {}).get("labels") or {}, terms)]

    def children_of(self, namespace: str, stack: str) -> list[Manifest]:
        """Every cached child labelled with this stack."""
        keys = self._by_stack.get((namespace, stack), set())
        return [obj for key in keys if (obj := self._lookup(key)) is not None]

    def __len__(self) -> int:
        return sum(len(objects) for spaces in self._store.values() for objects in spaces.values())

    def _lookup(self, key: Key) -> Manifest | None:
        return self._store[key[0]].get(key[1], {}).get(key[2])

    # --- Writing (from the watches, and from the operator's own applies) --------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, old, new)`` on every change (synchronously: keep it short)."""
        self._listeners.append(listener)

    def put(self, obj: Manifest) -> None:
        """Store an object the API server just returned, unless a newer one is already here.

        Listeners are not told: it is the operator's own write, and the watch
        event that follows carries the same version, so it changes nothing either.
        """
        res = resource(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if (res.api_version, res.kind) not in self._kinds:
            return
        new = trimmed(obj, res)
        key = _key(new)
        if self._labelled(new) and not _older(new, self._lookup(key)):
            self._set(key, new)

    def _labelled(self, obj: Manifest) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return _match(labels, self._own_terms)

    def _set(self, key: Key, obj: Manifest) -> None:
        self._store[key[0]][key[1]][key[2]] = obj
        stack = ((obj.get("metadata") or {}).get("labels") or {}).get(self._stack_label, "")
        self._by_stack[(key[1], stack)].add(key)

    def _drop(self, key: Key) -> Manifest | None:
        spaces = self._store[key[0]]
        old = spaces.get(key[1], {}).pop(key[2], None)
        if key[1] in spaces and not spaces[key[1]]:
            del spaces[key[1]]
        if old is not None:
            stack = ((old.get("metadata") or {}).get("labels") or {}).get(self._stack_label, "")
            keys = self._by_stack.get((key[1], stack))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_stack[(key[1], stack)]
        return old

    def _changed(self, kind: str, old: Manifest | None, new: Manifest | None) -> None:
        for listener in self._listeners:
            try:
                listener(kind, old, new)
            except Exception:
                logger.exception("a listener of the child cache failed")

    def _upsert(self, obj: Manifest) -> None:
        key = _key(obj)
        old = self._lookup(key)
        if old is not None and (_older(obj, old) or _version(obj) == _version(old)):
            return
        self._set(key, obj)
        self._changed(key[0], old, obj)

    def _remove(self, obj: Manifest) -> None:
        key = _key(obj)
        stored = self._lookup(key)
        if stored is None or _older(obj, stored):
            # Already gone, or recreated since (the operator's own apply came first).
            return
        self._drop(key)
        self._changed(key[0], stored, None)

    # --- Running ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the watches and return once every kind is listed.

        Raises KubeError at once when the API server refuses a list (RBAC, an
        unknown kind); the caller bounds the wait with ``asyncio.timeout``.
        """
        loop = asyncio.get_running_loop()
        # One connection per watch and one for lists; a watch event is one line,
        # and a line may be as long as the largest object (a ConfigMap, up to 1 MiB).
        self._http = session(self._connection, limit=len(self._scopes) + 2, read_bufsize=2**21)
        self._tasks = [
            loop.create_task(self._run(scope), name=f"retention-cache {scope}")
            for scope in self._scopes
        ]
        while not self.synced:
            if self._failure is not None:
                await self.stop()
                raise self._failure
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Cancel the watches and close their connections."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            await self._http.close()

    async def _run(self, scope: _Scope) -> None:
        version: str | None = None
        delay = 1.0
        while True:
            try:
                if version is None:
                    version = await self._list(scope)
                    self._synced[scope].set()
                version = await self._watch(scope, version)
                delay = 1.0
            except _Gone:
                version = None
            except KubeError as exc:
                if not self._synced[scope].is_set() and exc.status in (401, 403, 404):
                    self._failure = KubeError(
                        exc.status, exc.reason, f"cannot list {scope}: {exc.message}"
                    )
                    return
                logger.warning("watch of %s failed, again in %.0fs: %s", scope, delay, exc)
                version = None if exc.status == 410 else version
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                logger.warning("watch of %s broke, again in %.0fs: %r", scope, delay, exc)
            else:
                continue
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(30.0, delay * 2)

    async def _get_page(self, scope: _Scope, params: dict[str, str]) -> Manifest:
        assert self._http is not None
        async with self._http.get(
            self._connection.host + scope.res.collection(scope.namespace),
            params=params,
            headers=self._connection.headers(),
            timeout=self._list_timeout,
        ) as response:
            answer = Answer(response.status, response.reason or "", {}, await response.read())
        if answer.status != 200:
            raise error_of(answer)
        page: Manifest = answer.json()
        return page

    def _params(self, **extra: str) -> dict[str, str]:
        return {"labelSelector": self._selector, **extra}

    async def _list(self, scope: _Scope) -> str:
        """List the scope page by page, replace what it holds; return the list's version."""
        seen: set[Key] = set()
        token = ""
        while True:
            params = self._params(limit=str(self._page_size))
            if token:
                params["continue"] = token
            page = await self._get_page(scope, params)
            for item in page.get("items", []):
                obj = trimmed(item, scope.res)
                seen.add(_key(obj))
                self._upsert(obj)
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
        kind = scope.res.kind
        gone = [
            obj
            for ns, objects in self._store[kind].items()
            for name, obj in objects.items()
            if scope.holds((kind, ns, name)) and (kind, ns, name) not in seen
        ]
        for obj in gone:
            self._remove(obj)
        return str((page.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(self, scope: _Scope, version: str) -> str:
        """Follow the watch until the server ends it; return the last version seen."""
        params = self._params(
            watch="true",
            allowWatchBookmarks="true",
            resourceVersion=version,
            timeoutSeconds=str(self._watch_seconds),
        )
        assert self._http is not None
        async with self._http.get(
            self._connection.host + scope.res.collection(scope.namespace),
            params=params,
            headers=self._connection.headers(),
            timeout=self._watch_timeout,
        ) as response:
            if response.status != 200:
                body = await response.read()
                raise error_of(Answer(response.status, response.reason or "", {}, body))
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise KubeError(
                        int(obj.get("code") or 500),
                        str(obj.get("reason", "")),
                        str(obj.get("message", "")),
                    )
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "BOOKMARK":
                    continue
                item = trimmed(obj, scope.res)
                if kind == "DELETED":
                    self._remove(item)
                else:
                    self._upsert(item)
        return version
