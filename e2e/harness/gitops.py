"""What Flux and Argo CD say of a stack, from the libraries they run.

:func:`kstatus` hands objects to the ``kstatus`` checker (the kstatus library
of sigs.k8s.io/cli-utils, ``status.Compute``: Flux's health checks and Helm
4's ``--wait``); :func:`argocd_health` hands them to ``argocd-health`` (the
Lua health check of docs/gitops.md under gopher-lua, called the way Argo CD
calls it). Both checkers are built by ``e2e/controlplane/build-gitops.sh``
into the binary cache; :func:`tools_dir` builds them on first use.

Callers: the chart and e2e tests, and ``harness gitops-table``
(:mod:`harness.gitops_table`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "e2e" / "controlplane" / "build-gitops.sh"
GITOPS_DOC = REPO / "docs" / "gitops.md"
HEALTH_KEY = "resource.customizations.health.retention.dev_RetentionStack"

Manifest = Mapping[str, Any]


class CheckerError(RuntimeError):
    """A checker refused an object (a field of the wrong type) or a script failed."""


@dataclass(frozen=True)
class Verdict:
    """A status and the message the tool shows beside it."""

    status: str
    message: str


@functools.cache
def tools_dir(*extra: str) -> Path:
    """Build (or find cached) the GitOps tools and return their directory.

    ``extra`` names optional tools (``"prometheus-operator"``). Runs
    build-gitops.sh, whose last line is ``BIN_DIR=<path>``; raises
    CalledProcessError if the build fails. ``RETENTION_GITOPS_BIN_DIR``
    names a directory to use instead.
    """
    env_dir = os.environ.get("RETENTION_GITOPS_BIN_DIR")
    if env_dir:
        return Path(env_dir)
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), *extra], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    last = out.strip().splitlines()[-1]
    if not last.startswith("BIN_DIR="):
        raise RuntimeError(f"build-gitops.sh printed no BIN_DIR line: {out!r}")
    return Path(last.removeprefix("BIN_DIR="))


def _run(argv: list[str], objects: Sequence[Manifest]) -> list[Verdict]:
    out = subprocess.run(
        argv, input=json.dumps(list(objects)), capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise CheckerError(f"{Path(argv[0]).name} failed: {out.stderr.strip()}")
    verdicts = []
    for i, entry in enumerate(json.loads(out.stdout)):
        if entry.get("error"):
            raise CheckerError(f"{Path(argv[0]).name}, object {i}: {entry['error']}")
        verdicts.append(Verdict(entry.get("status", ""), entry.get("message", "")))
    return verdicts


def kstatus(objects: Sequence[Manifest]) -> list[Verdict]:
    """kstatus's status and message for each object, in order.

    Raises CheckerError when the library refuses an object.
    """
    return _run([str(tools_dir() / "kstatus")], objects)


def argocd_health(objects: Sequence[Manifest], *, script: str | None = None) -> list[Verdict]:
    """Argo CD's health of each object under ``script`` (default: docs/gitops.md's check).

    An empty status means Argo CD would show no health for the object.
    Raises CheckerError when the script fails, as Argo CD would show Unknown.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script if script is not None else health_check_lua())
        lua.flush()
        return _run([str(tools_dir() / "argocd-health"), lua.name], objects)


def health_check_lua() -> str:
    """The Lua of the argocd-cm example in docs/gitops.md: what users copy."""
    for block in re.findall(r"```yaml\n(.*?)```", GITOPS_DOC.read_text(), flags=re.S):
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and HEALTH_KEY in (doc.get("data") or {}):
                return str(doc["data"][HEALTH_KEY])
    raise AssertionError(f"no argocd-cm with {HEALTH_KEY} in {GITOPS_DOC}")
