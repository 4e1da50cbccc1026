"""buildah and debootstrap as :mod:`harness.images` runs them: commands, output, cleanup.

Every buildah call uses one storage of the project's own under the image cache
(``--root``/``--runroot``), never the system's ``/var/lib/containers``, and
``--isolation chroot`` for RUN steps (no daemon, no user namespaces needed).
Output of every command streams to stderr, prefixed with the image's name, so
a build shows its progress; a failing command raises :class:`BuildError` with
the last lines it printed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# overlay works as root on these machines (overlayfs is built into the kernel)
# and needs far less disk and time than vfs, which copies every layer whole.
STORAGE_DRIVER = "overlay"


class BuildError(RuntimeError):
    """A build command failed; the message names it and ends with its last output lines."""


def log(message: str) -> None:
    """Print one progress line to stderr."""
    print(f"[images {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(argv: Sequence[str], *, label: str, timeout: float, quiet: bool = False) -> str:
    """Run ``argv``, streaming its output to stderr as ``label | line``; return the output.

    Kills the command after ``timeout`` seconds. Raises BuildError if it
    exits non-zero or is killed. ``quiet`` keeps the output off stderr.
    """
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    tail: deque[str] = deque(maxlen=40)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            tail.append(line)
            if not quiet:
                print(f"  {label} | {line}", file=sys.stderr, flush=True)
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code != 0:
        what = "timed out" if code == -9 else f"exited {code}"
        raise BuildError(f"{label}: {argv[0]} {what}: {' '.join(argv)}\n" + "\n".join(tail))
    return "\n".join(lines)


@dataclass(frozen=True)
class Buildah:
    """buildah on one storage (``root``/``runroot``) of the image cache."""

    root: Path
    runroot: Path

    def _cmd(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            STORAGE_DRIVER,
            *args,
        ]

    def version(self) -> str:
        """Return buildah's version line (part of every image's recipe)."""
        return run(["buildah", "--version"], label="buildah", timeout=30, quiet=True).strip()

    def has_image(self, ref: str) -> bool:
        """Return True if ``ref`` is in this storage."""
        probe = subprocess.run(
            self._cmd("inspect", "--type", "image", "--format", "{{.FromImageID}}", ref),
            capture_output=True,
            check=False,
        )
        return probe.returncode == 0

    def bud(
        self,
        *,
        label: str,
        dockerfile: Path,
        context: Path,
        ref: str,
        build_args: dict[str, str],
        volumes: Sequence[str] = (),
        squash: bool = False,
        timeout: float = 1800,
    ) -> None:
        """Build ``dockerfile`` in ``context`` and tag the result ``ref``.

        Never pulls: every FROM is either ``scratch``, a stage of the same
        file, or an image of ours already in this storage (the caller sees to
        that). ``volumes`` are bind mounts for RUN steps only, never baked in.
        """
        args = ["bud", "--isolation", "chroot", "--pull=never", "--layers=false"]
        args += ["--file", str(dockerfile), "--tag", ref]
        for key, value in sorted(build_args.items()):
            args += ["--build-arg", f"{key}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        if squash:
            args.append("--squash")
        run(self._cmd(*args, str(context)), label=label, timeout=timeout)

    def push_archive(self, *, label: str, ref: str, archive: Path) -> None:
        """Write ``ref`` as an OCI archive to ``archive``, named ``ref`` inside."""
        run(
            self._cmd("push", "--quiet", ref, f"oci-archive:{archive}:{ref}"),
            label=label,
            timeout=600,
        )

    def load_archive(self, *, label: str, ref: str, archive: Path) -> None:
        """Bring ``ref`` back into this storage from its archive (after a storage wipe)."""
        run(self._cmd("pull", "--quiet", f"oci-archive:{archive}"), label=label, timeout=600)
        if not self.has_image(ref):
            raise BuildError(f"{label}: {archive} did not load as {ref}")

    def remove_other_tags(self, *, repository: str, keep: str) -> None:
        """Remove the images of ``repository`` but ``keep`` from this storage (old builds)."""
        out = run(self._cmd("images", "--json"), label="buildah", timeout=60, quiet=True).strip()
        for image in json.loads(out or "[]"):
            names = image.get("names") or []
            ours = [n for n in names if n.rsplit(":", 1)[0] == repository]
            if ours and keep not in names:
                with contextlib.suppress(BuildError):
                    run(self._cmd("rmi", "--force", image["id"]), label="buildah", timeout=60)

    def clean_working_containers(self) -> None:
        """Remove working containers a killed build left behind, and their mounts."""
        with contextlib.suppress(BuildError):
            run(self._cmd("rm", "--all"), label="buildah", timeout=120, quiet=True)
        with contextlib.suppress(BuildError):
            run(self._cmd("rmi", "--prune"), label="buildah", timeout=120, quiet=True)


def mounts_under(path: Path) -> list[str]:
    """Return the mount points at or under ``path``, deepest first."""
    prefix = str(path.resolve())
    found: list[str] = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_all_under(path: Path) -> None:
    """Unmount everything at or under ``path`` (debootstrap's /proc and /sys on failure)."""
    for point in mounts_under(path):
        subprocess.run(["umount", "--lazy", point], check=False)


def debootstrap(
    *, label: str, target: Path, release: str, mirror: str, variant: str, include: Sequence[str]
) -> None:
    """Bootstrap ``release`` from ``mirror`` into ``target``; no mount survives it.

    Raises BuildError if debootstrap fails (its log tail is in the message).
    """
    argv = [
        "debootstrap",
        f"--variant={variant}",
        f"--include={','.join(include)}",
        release,
        str(target),
        mirror,
    ]
    try:
        run(argv, label=label, timeout=1800)
    finally:
        unmount_all_under(target)
