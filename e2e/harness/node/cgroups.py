"""The real node's own cgroup hierarchy (cgroup v1, the cgroupfs driver).

The kubelet puts every pod under ``cgroupRoot``; giving each real node a
root of its own (``/retention-node-<slot>``) keeps two nodes apart and lets
teardown find, kill and remove everything a node left, even after a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    """The mounted cgroup v1 hierarchies (the empty v2 ``unified`` one left out)."""
    found = []
    for entry in sorted(CGROUP_FS.iterdir()):
        if entry.is_symlink() or entry.name == "unified":
            continue
        if (entry / "cgroup.procs").exists() and (entry / "tasks").exists():
            found.append(entry)
    return found


def name_for(slot: int) -> str:
    """The node's cgroupRoot: ``/retention-node-<slot>``."""
    return f"/retention-node-{slot}"


def create(root: str) -> None:
    """Create ``root`` in every hierarchy; a cpuset gets its parent's CPUs and memory nodes."""
    for hierarchy in hierarchies():
        path = hierarchy / root.lstrip("/")
        path.mkdir(exist_ok=True)
        for key in ("cpuset.cpus", "cpuset.mems"):
            source = hierarchy / key
            if source.exists() and not (path / key).read_text().strip():
                (path / key).write_text(source.read_text())


def _depth_first(path: Path) -> list[Path]:
    dirs = [Path(top) for top, _, _ in os.walk(path)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def pids(root: str) -> set[int]:
    """Every process in ``root`` or below it, in any hierarchy."""
    found: set[int] = set()
    for hierarchy in hierarchies():
        base = hierarchy / root.lstrip("/")
        if not base.exists():
            continue
        for path in _depth_first(base):
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
    return found


def remove(root: str, *, timeout: float = 10.0) -> list[str]:
    """Kill what is left in ``root`` and remove it everywhere; returns what could not go.

    Processes are killed (SIGKILL) until none is left or ``timeout`` passes,
    then the directories are removed deepest first. A directory that stays
    busy is named in the result.
    """
    if root.strip("/") == "":
        raise ValueError("refusing to empty the root cgroup: a node's cgroupRoot is never /")
    deadline = time.monotonic() + timeout
    while (left_pids := pids(root)) and time.monotonic() < deadline:
        for pid in left_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    left = []
    for hierarchy in hierarchies():
        base = hierarchy / root.lstrip("/")
        if not base.exists():
            continue
        for path in _depth_first(base):
            try:
                path.rmdir()
            except OSError as exc:
                left.append(f"{path}: {exc.strerror}")
    return left
