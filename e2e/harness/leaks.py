"""The secret sweep: no Secret value seen in a session may appear in what the operator wrote.

While the session's control plane runs, :class:`SessionRecorder` watches,
in threads of its own, every Secret (the values to look for: what the tests
created, and the Redis passwords the operator generated), every Event, every
RetentionStack (status and annotations, each version) and every child the
operator made (labelled ``retention.dev/stack``: ConfigMaps, Deployments,
Services, ...; not its Secret). At the end, :func:`find_leaks` looks for each
value, in plain text, percent-encoded, and base64 at any alignment, in all
of that and in every operator log file of the session. The control-plane
fixture fails the session when anything is found.

Watching (instead of reading at the end) matters: each test's namespace is
deleted when it ends, and its Events and Secrets with it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kubernetes import client, config, watch

logger = logging.getLogger(__name__)

# Shorter values ("1", "true") would be found by chance in any text.
MIN_SECRET_LENGTH = 8
# Secrets that are no test's or stack's: Helm keeps its releases in Secrets.
_SKIPPED_TYPES = frozenset({"helm.sh/release.v1", "kubernetes.io/service-account-token"})
STACK_LABEL = "retention.dev/stack"
GROUP, VERSION, PLURAL = "retention.dev", "v1alpha1", "retentionstacks"


def _base64_forms(value: bytes) -> set[str]:
    """The base64 text of ``value`` wherever it sits in a longer encoded string.

    Base64 works on 3-byte groups, so a value after k bytes of other data is
    encoded differently for each k mod 3; the characters that depend on the
    value alone are taken for each of the three offsets, in both alphabets.
    """
    out = set()
    for k in range(3):
        encoded = base64.b64encode(b"\0" * k + value).decode()
        start, end = -(-4 * k // 3), (4 * (k + len(value))) // 3
        core = encoded[start:end]
        out.add(core)
        out.add(core.replace("+", "-").replace("/", "_"))
    return {form for form in out if len(form) >= MIN_SECRET_LENGTH}


def forms(value: str) -> set[str]:
    """Every text form in which ``value`` would count as leaked."""
    return {value, quote(value, safe=""), *_base64_forms(value.encode())}


def find_leaks(secrets: dict[str, str], writings: Iterable[tuple[str, str]]) -> list[str]:
    """``"<secret> in <where>"`` for each secret value (in any form) found in a writing."""
    needles = {
        label: forms(value) for label, value in secrets.items() if len(value) >= MIN_SECRET_LENGTH
    }
    pieces = list(writings)
    # One search per form over all the text; only a hit is looked up piece by piece.
    everything = "\n\0\n".join(text for _, text in pieces)
    found = []
    for label, variants in needles.items():
        hits = [v for v in variants if v in everything]
        if hits:
            found += [
                f"{label} in {where}" for where, text in pieces if any(v in text for v in hits)
            ]
    return found


@dataclass
class SessionRecorder:
    """Watches the cluster for the secret sweep; see the module docstring."""

    kubeconfig: Path
    secrets: dict[str, str] = field(default_factory=dict)
    writings: dict[str, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start one watching thread per kind (returns at once)."""
        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        policy, networking = client.PolicyV1Api(api), client.NetworkingV1Api(api)
        custom = client.CustomObjectsApi(api)
        labelled = {"label_selector": STACK_LABEL}
        streams: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
            ("Secret", core.list_secret_for_all_namespaces, {}),
            ("Event", core.list_event_for_all_namespaces, {}),
            ("RetentionStack", custom.list_cluster_custom_object, {}),
            ("ConfigMap", core.list_config_map_for_all_namespaces, labelled),
            ("Service", core.list_service_for_all_namespaces, labelled),
            ("Deployment", apps.list_deployment_for_all_namespaces, labelled),
            ("StatefulSet", apps.list_stateful_set_for_all_namespaces, labelled),
            ("PodDisruptionBudget", policy.list_pod_disruption_budget_for_all_namespaces, labelled),
            ("NetworkPolicy", networking.list_network_policy_for_all_namespaces, labelled),
        ]
        for kind, lister, kwargs in streams:
            if kind == "RetentionStack":
                kwargs = {"group": GROUP, "version": VERSION, "plural": PLURAL}
            thread = threading.Thread(
                target=self._follow, args=(kind, lister, kwargs), name=f"sweep {kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the watches (each ends within its short server timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _follow(self, kind: str, lister: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        # Short watches, each resuming where the last ended, so that stop() is quick.
        version: str | None = None
        while not self._stop.is_set():
            watcher = watch.Watch()  # type: ignore[no-untyped-call]
            resume = {"resource_version": version} if version else {}
            try:
                stream = watcher.stream(lister, timeout_seconds=5, **kwargs, **resume)  # type: ignore[no-untyped-call]
                for event in stream:
                    self._record(kind, event["raw_object"])
                version = watcher.resource_version
            except client.ApiException as exc:
                # 410: the version is too old, start over; 404: the CRD is not there yet.
                version = None if exc.status == 410 else version
                self._stop.wait(1)
            except Exception as exc:  # the API server may be restarting or gone
                logger.debug("sweep watch of %s: %r", kind, exc)
                self._stop.wait(1)

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        where = f"{kind} {meta.get('namespace', '')}/{meta.get('name', '')}"
        with self._lock:
            if kind == "Secret":
                if obj.get("type") in _SKIPPED_TYPES:
                    return
                for key, encoded in (obj.get("data") or {}).items():
                    try:
                        value = base64.b64decode(encoded).decode()
                    except (ValueError, UnicodeDecodeError):
                        continue
                    self.secrets[f"Secret {where} key {key!r}"] = value
                return
            if kind == "RetentionStack":
                # The spec is the user's; what the operator writes is status and annotations.
                obj = {"status": obj.get("status"), "annotations": meta.get("annotations")}
            version = meta.get("resourceVersion", "")
            self.writings[f"{where} (resourceVersion {version})"] = json.dumps(obj)

    def logs(self, root: Path) -> Iterator[tuple[str, str]]:
        """Every operator log file under ``root`` (the session's temporary directory)."""
        for path in sorted(root.rglob("operator*.log")):
            yield str(path), path.read_text(errors="replace")

    def leaks(self, log_root: Path) -> list[str]:
        """Stop watching and return what leaked (empty when nothing did)."""
        self.stop()
        with self._lock:
            writings = list(self.writings.items())
            secrets = dict(self.secrets)
        return find_leaks(secrets, [*writings, *self.logs(log_root)])
