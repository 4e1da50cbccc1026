"""The API server's audit log of writes: who changed what, and when.

``start_control_plane(..., audit=True)`` starts kube-apiserver with
:data:`POLICY`: one JSON line per mutating request (create, update, patch,
delete), at the Metadata level, once its response is sent. The fault tests read
it to attribute every write to the identity that sent it (each operator replica
gets a client certificate of its own), which no process's own metrics can do
once the process is killed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

MUTATING_VERBS = ("create", "update", "patch", "delete", "deletecollection")
POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One line per request, written when the response is complete.
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {"level": "Metadata", "verbs": list(MUTATING_VERBS)},
        {"level": "None"},
    ],
}


def write_policy(path: Path) -> Path:
    """Write :data:`POLICY` to ``path`` and return it."""
    path.write_text(yaml.safe_dump(POLICY))
    return path


@dataclass(frozen=True)
class Write:
    """One mutating request the API server answered."""

    at: dt.datetime
    user: str
    verb: str
    resource: str
    subresource: str
    namespace: str
    name: str
    field_manager: str
    code: int

    @property
    def succeeded(self) -> bool:
        return 200 <= self.code < 300


def _write(entry: dict[str, object]) -> Write:
    ref = entry.get("objectRef") or {}
    assert isinstance(ref, dict)
    user = entry.get("user") or {}
    assert isinstance(user, dict)
    status = entry.get("responseStatus") or {}
    assert isinstance(status, dict)
    query = parse_qs(urlsplit(str(entry.get("requestURI", ""))).query)
    stamp = str(entry.get("requestReceivedTimestamp"))
    return Write(
        at=dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")),
        user=str(user.get("username", "")),
        verb=str(entry.get("verb", "")),
        resource=str(ref.get("resource", "")),
        subresource=str(ref.get("subresource", "")),
        namespace=str(ref.get("namespace", "")),
        name=str(ref.get("name", "")),
        field_manager=(query.get("fieldManager") or [""])[0],
        code=int(str(status.get("code", 0))),
    )


def writes(log: Path) -> list[Write]:
    """Every write recorded in the audit ``log`` so far, oldest first (empty if none).

    A last line still being written is left for the next read.
    """
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("verb") in MUTATING_VERBS:
            out.append(_write(entry))
    return sorted(out, key=lambda w: w.at)
