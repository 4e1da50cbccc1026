"""Node.js programs of the project (the BullMQ example, the test driver), run as processes.

A program is a folder of sources plus a ``package.json`` and ``package-lock.json``
(possibly of another folder: the same driver runs on two BullMQ majors). Its
``node_modules`` is installed once by ``npm ci --ignore-scripts`` into the cache
(``~/.cache/retention-stack/npm/<key>``, keyed by the lock, the manifest and Node's
major version) and shared; each run gets a folder of its own with copies of the
sources and a ``node_modules`` symlink, so Node resolves the cached packages.
Callers: the services and e2e tests of the queue kinds, and the examples' tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import images
from harness.drivers import Driver
from harness.procs import Proc, start

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DRIVERS = REPO / "e2e" / "queues"
NPM_TIMEOUT = 600.0


class NodeMissing(RuntimeError):
    """node or npm is not on PATH, or npm ci failed; the message says which."""


def node_binary() -> str:
    """The ``node`` on PATH; raises NodeMissing naming what to install."""
    found = shutil.which("node")
    if found is None:
        raise NodeMissing("node is not on PATH: install Node.js 20 or later")
    return found


def _node_major() -> str:
    out = subprocess.run(
        [node_binary(), "--version"], capture_output=True, text=True, check=True, timeout=30
    )
    return out.stdout.strip().lstrip("v").split(".")[0]


def cache_dir() -> Path:
    """The npm cache of the project, beside the image cache (``RETENTION_CACHE_DIR``)."""
    return images.cache_dir().parent / "npm"


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def install(packages: Path) -> Path:
    """``node_modules`` of the ``package-lock.json`` in ``packages``, installed if missing.

    Returns the folder holding ``node_modules``. Raises NodeMissing when npm is
    absent or ``npm ci`` fails (with npm's output).
    """
    manifest, lock = packages / "package.json", packages / "package-lock.json"
    digest = hashlib.sha256()
    for part in (manifest.read_bytes(), lock.read_bytes(), _node_major().encode()):
        digest.update(hashlib.sha256(part).digest())
    root = cache_dir()
    target = root / digest.hexdigest()[:16]
    with _locked(root):
        if (target / ".installed").exists():
            return target
        npm = shutil.which("npm")
        if npm is None:
            raise NodeMissing("npm is not on PATH: install Node.js 20 or later")
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        shutil.copy2(manifest, target / "package.json")
        shutil.copy2(lock, target / "package-lock.json")
        # Install scripts stay off: the only one in these trees builds an optional
        # native msgpack decoder, and the pure-JavaScript one is used without it.
        argv = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        argv += ["--cache", str(root / "cache")]
        done = subprocess.run(
            argv, cwd=target, capture_output=True, text=True, timeout=NPM_TIMEOUT, check=False
        )
        if done.returncode != 0:
            raise NodeMissing(f"npm ci in {target} failed:\n{done.stdout}\n{done.stderr}")
        (target / ".installed").write_text(json.dumps({"from": str(packages)}))
    return target


@dataclass(frozen=True)
class NodeProgram:
    """Sources in ``sources`` run with the packages of ``packages`` (default: the same folder)."""

    sources: Path
    packages: Path | None = None

    def prepare(self, run_dir: Path) -> Path:
        """Copy the sources into ``run_dir`` beside a ``node_modules`` link; returns run_dir."""
        packages = self.packages or self.sources
        modules = install(packages) / "node_modules"
        run_dir.mkdir(parents=True, exist_ok=True)
        for item in self.sources.iterdir():
            if item.name in ("node_modules", "package-lock.json", "Dockerfile"):
                continue
            if item.is_dir():
                shutil.copytree(item, run_dir / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, run_dir / item.name)
        # ESM needs "type": "module" from a package.json beside the sources.
        shutil.copy2(packages / "package.json", run_dir / "package.json")
        link = run_dir / "node_modules"
        if not link.exists():
            link.symlink_to(modules, target_is_directory=True)
        return run_dir

    def start(
        self, script: str, *, run_dir: Path, name: str, env: dict[str, str] | None = None
    ) -> Proc:
        """Start ``node <script>`` in ``run_dir`` (prepared first) with ``env`` added."""
        self.prepare(run_dir)
        return start(name, [node_binary(), script], log_dir=run_dir, env=env, cwd=run_dir)


BULLMQ_EXAMPLE = NodeProgram(EXAMPLES / "bullmq")
"""The Hono + BullMQ example (BullMQ 6)."""


def bullmq_driver(major: int) -> NodeProgram:
    """The BullMQ test driver on BullMQ ``major`` (5 or 6: the example's packages)."""
    packages = EXAMPLES / "bullmq" if major == 6 else DRIVERS / f"bullmq{major}"
    return NodeProgram(DRIVERS / "bullmq", packages=packages)


def node_driver(program: NodeProgram, *, run_dir: Path, env: dict[str, str]) -> Driver:
    """``node driver.js`` of ``program``, prepared in ``run_dir``."""
    program.prepare(run_dir)
    return Driver([node_binary(), "driver.js"], cwd=run_dir, env=env)
