"""Each Python image holds its side of uv.lock, at the locked versions, and nothing of the other.

The operator image: kopf and the Kubernetes client, no FastAPI, uvicorn or
asyncpg. The workloads image: FastAPI, uvicorn and asyncpg, no kopf and no
Kubernetes client. Every distribution in either venv is in the lock at the
locked version: nothing was resolved anew while building. The host's CA
bundle, mounted for the install step, is not in the image.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest

from harness.images import REPO, BuiltImage

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]

_LIST = (
    "import importlib.metadata as m, json\n"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))\n"
)

SIDES = {
    # asyncpg is on both sides: the operator reads the read replicas' replay lag with it.
    "operator": {"forbidden": {"fastapi", "uvicorn", "starlette"}},
    "workloads": {"forbidden": {"kopf", "kubernetes", "prometheus-api-client", "aiohttp"}},
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return {_norm(p["name"]): p["version"] for p in lock["package"] if "version" in p}


def _direct(side: str) -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {
        _norm(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0])
        for d in project["optional-dependencies"][side]
    }


@pytest.mark.parametrize("side", sorted(SIDES))
def test_the_image_holds_its_side_at_the_locked_versions(
    containerd, built_images: dict[str, BuiltImage], side: str
) -> None:
    container = containerd.run(built_images[side], f"{side}-venv", args=["sleep", "300"])
    probe = containerd.exec(container, ["/opt/venv/bin/python", "-c", _LIST])
    assert probe.returncode == 0, probe.stderr
    installed = {_norm(name): version for name, version in json.loads(probe.stdout).items()}
    locked = _locked()
    assert {n: v for n, v in installed.items() if locked.get(n) != v} == {}
    assert _direct(side) <= set(installed)
    assert SIDES[side]["forbidden"] & set(installed) == set()
    # The host's CA bundle was mounted for the install step only, never copied in.
    bundle = containerd.exec(container, ["sha256sum", "/etc/ssl/certs/ca-certificates.crt"])
    host = hashlib.sha256(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()).hexdigest()
    assert bundle.returncode == 0 and host not in bundle.stdout, bundle.stdout + bundle.stderr
    assert containerd.stop(container, "SIGKILL") != 0
