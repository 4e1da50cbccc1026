"""A throwaway containerd with the built images imported, and containers run in it with ``ctr``.

The containerd has its own root, state, socket, runc root and config under a
temporary folder (never ``/run/containerd`` or ``/var/lib/containerd``), the
CRI settings the real node uses (cgroupfs, overlayfs, ``restrict_oom_score_adj``),
and is stopped at the end of the session. Teardown then checks what it must
not leave behind: a mount under its folder, a shim socket, a cgroup.

Containers run as the pods run them: read-only root filesystem, the image's
own user, in a network namespace of their own (nothing listens on the host).
Containerd 1.6 puts each shim's socket in ``/run/containerd/s/<sha256>``
whatever the config says (the path is compiled in); the hash covers this
containerd's socket path, so the sockets are this fixture's own, and teardown
checks that none is left. ``ctr``'s FIFOs and runc's state, which default to
``/run/containerd`` too, are pointed into the temporary folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import images, procs
from harness.buildah import mounts_under, unmount_all_under
from retention_operator.model import RetentionStack

NAMESPACE = "k8s.io"
# A GET of 127.0.0.1:8080<argv[1]> from inside a Python image; prints "<status> <body>".
PYTHON_GET = (
    "import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    r = urllib.request.urlopen('http://127.0.0.1:8080' + sys.argv[1], timeout=5)\n"
    "    print(r.status, r.read().decode())\n"
    "except urllib.error.HTTPError as e:\n"
    "    print(e.code, e.read().decode())\n"
)
SHIM_SOCKETS = Path("/run/containerd/s")
CGROUP_ROOT = Path("/sys/fs/cgroup")
TMPFS_SIZE = "6g"

_CONFIG = """\
version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = "{d}/runc-v1"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{pause}"
    # Root here may not lower oom_score_adj (no CAP_SYS_RESOURCE); see REALNODE.md.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{d}/runc"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "{d}/cni"
"""


@dataclass
class Container:
    """A container started by :meth:`Containerd.run`: its id, host pid and output."""

    id: str
    pid: int
    popen: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        """Return what the container printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def status(self, key: str) -> str:
        """Return a field of the main process's /proc status (``Uid``, ``State``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == key:
                return value.strip()
        raise KeyError(key)

    def uid(self) -> int:
        """Return the main process's effective uid."""
        return int(self.status("Uid").split()[1])

    def children(self) -> dict[int, str]:
        """Return ``{pid: state}`` of the main process's children (``Z`` for a zombie)."""
        found: dict[int, str] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines()
                )
                if int(fields["PPid"]) == self.pid:
                    found[int(entry.name)] = fields["State"].split()[0]
        return found


@dataclass
class Containerd:
    """The session's containerd: ``ctr`` against its socket, and the containers it ran."""

    directory: Path
    address: Path
    cgroup_parent: str
    proc: procs.Proc
    started: list[str] = field(default_factory=list)

    @property
    def runc_root(self) -> Path:
        """Where runc keeps the state of the containers ``ctr run`` starts here."""
        return self.directory / "runc"

    def ctr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``ctr`` against this containerd; never raises on a non-zero exit."""
        argv = ["ctr", "--address", str(self.address), "--namespace", NAMESPACE, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def task_pid(self, container_id: str) -> int | None:
        """Return the host pid of the container's running task, or None if it runs none."""
        for line in self.ctr("tasks", "list").stdout.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 3 and cols[0] == container_id and cols[2] == "RUNNING":
                return int(cols[1])
        return None

    def _run_argv(
        self,
        image: images.BuiltImage,
        container_id: str,
        *,
        args: Sequence[str],
        env: Mapping[str, str] | None,
        mounts: Sequence[tuple[Path, str, bool]],
        pid_namespace_of: Container | None,
    ) -> list[str]:
        argv = ["ctr", "--address", str(self.address), "--namespace", NAMESPACE, "run", "--rm"]
        # ctr's own defaults for these are under /run/containerd; keep them in ours.
        argv += ["--fifo-dir", str(self.directory / "fifo"), "--runc-root", str(self.runc_root)]
        argv += ["--cgroup", f"{self.cgroup_parent}/{container_id}", "--read-only"]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        for src, dst, ro in mounts:
            options = "rbind:ro" if ro else "rbind:rw"
            argv += ["--mount", f"type=bind,src={src},dst={dst},options={options}"]
        if pid_namespace_of is not None:
            argv += ["--with-ns", f"pid:/proc/{pid_namespace_of.pid}/ns/pid"]
        self.started.append(container_id)
        return [*argv, image.ref, container_id, *args]

    def run(
        self,
        image: images.BuiltImage,
        container_id: str,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        mounts: Sequence[tuple[Path, str, bool]] = (),
        pid_namespace_of: Container | None = None,
    ) -> Container:
        """Start ``image`` as ``container_id`` on a read-only root; return once it runs.

        ``args`` replace the image's entry point when given; ``mounts`` are
        (host path, container path, read-only) binds. The container runs in
        the foreground of a ``ctr run --rm``, whose exit code is the
        container's. Raises AssertionError with its output if it never runs.
        """
        argv = self._run_argv(
            image,
            container_id,
            args=args,
            env=env,
            mounts=mounts,
            pid_namespace_of=pid_namespace_of,
        )
        log_path = self.directory / "logs" / f"{container_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = self.task_pid(container_id)
            if pid is not None:
                return Container(container_id, pid, popen, log_path)
            if popen.poll() is not None:
                break
            time.sleep(0.1)
        text = log_path.read_text(errors="replace")
        raise AssertionError(f"{container_id} did not start (exit {popen.poll()}):\n{text}")

    def run_to_completion(
        self,
        image: images.BuiltImage,
        container_id: str,
        *,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        mounts: Sequence[tuple[Path, str, bool]] = (),
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``image`` like :meth:`run` until it exits (an init container); return its outcome."""
        argv = self._run_argv(
            image, container_id, args=args, env=env, mounts=mounts, pid_namespace_of=None
        )
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def exec(
        self, container: Container, argv: Sequence[str], *, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside ``container`` as its user; never raises on a non-zero exit."""
        exec_id = f"probe-{time.monotonic_ns()}"
        fifo = f"--fifo-dir={self.directory / 'fifo'}"
        return self.ctr(
            "tasks", "exec", fifo, "--exec-id", exec_id, container.id, *argv, timeout=timeout
        )

    def stop(self, container: Container, sig: str | None = None, *, timeout: float = 15) -> int:
        """Signal the container (``sig``, or its image's stop signal); return its exit code.

        Raises subprocess.TimeoutExpired if it has not exited after ``timeout`` seconds.
        """
        args = ["tasks", "kill"] + (["--signal", sig] if sig else []) + [container.id]
        self.ctr(*args)
        return container.popen.wait(timeout=timeout)

    def wait_for_output(self, container: Container, text: str, *, timeout: float = 30) -> str:
        """Wait until ``text`` appears in the container's output; return the output.

        Raises AssertionError with the output if it does not within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = container.output()
            if text in out:
                return out
            if container.popen.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not in the output of {container.id}:\n{container.output()}")

    def shim_sockets(self) -> list[Path]:
        """Return the shim sockets of the containers this containerd ran that still exist."""
        found = []
        for container_id in self.started:
            key = os.path.join(str(self.address), NAMESPACE, container_id)
            path = SHIM_SOCKETS / hashlib.sha256(key.encode()).hexdigest()
            if path.exists():
                found.append(path)
        return found


def _cleanup_containers(cd: Containerd) -> None:
    for line in cd.ctr("tasks", "list").stdout.splitlines()[1:]:
        cd.ctr("tasks", "kill", "--signal", "SIGKILL", line.split()[0])
    time.sleep(0.5)
    for line in cd.ctr("tasks", "list").stdout.splitlines()[1:]:
        cd.ctr("tasks", "delete", "--force", line.split()[0])
    for line in cd.ctr("containers", "list", "--quiet").stdout.splitlines():
        cd.ctr("containers", "delete", line.strip())


def _remove_cgroups(parent: str) -> None:
    """Remove the (empty) cgroup ``parent`` from every v1 hierarchy; runc removed its children."""
    for hierarchy in CGROUP_ROOT.iterdir():
        with contextlib.suppress(OSError):
            (hierarchy / parent.lstrip("/")).rmdir()


@pytest.fixture
def stack() -> RetentionStack:
    """Stack ``demo`` in ``ns`` with a managed Redis and PgBouncer before 127.0.0.1:5432.

    Nothing listens on 127.0.0.1:5432 in a container's own network namespace.
    """
    body = {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "api": {"image": "app:1"},
            "workers": {},
            "redis": {"managed": {}},
            "pgbouncer": {
                "database": {"host": "127.0.0.1", "port": 5432, "name": "app", "user": "app_user"},
                "credentialsSecretRef": {"name": "pg-creds"},
            },
        },
    }
    return RetentionStack.model_validate(body)


@pytest.fixture(scope="session")
def built_images() -> dict[str, images.BuiltImage]:
    """Every image, built or found in the cache (``make images`` has usually built them)."""
    return images.build()


@pytest.fixture(scope="session")
def containerd(built_images: dict[str, images.BuiltImage]) -> Iterator[Containerd]:
    """A containerd of the session's own with every built image imported into ``k8s.io``."""
    if os.geteuid() != 0:
        pytest.fail("the node tests run containerd and need root")
    directory = Path(tempfile.mkdtemp(prefix="rs-ctrd-", dir="/tmp"))
    # A tmpfs of its own: the unpacked images (~1 GB of small files) go with one
    # unmount instead of a long rm, and nothing of them touches the disk.
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0711", "tmpfs", str(directory)],
        check=True,
    )
    # Which of /run/containerd/s and /run/containerd the shims create (and teardown removes).
    created = [p for p in (SHIM_SOCKETS, SHIM_SOCKETS.parent) if not p.exists()]
    config = directory / "config.toml"
    config.write_text(_CONFIG.format(d=directory, pause=built_images["pause"].ref))
    proc = procs.start(
        "containerd", ["containerd", "--config", str(config)], log_dir=directory / "logs"
    )
    cd = Containerd(
        directory=directory,
        address=directory / "containerd.sock",
        cgroup_parent=f"/{directory.name}",
        proc=proc,
    )
    try:
        deadline = time.monotonic() + 30
        while cd.ctr("version").returncode != 0:
            if time.monotonic() > deadline or not proc.alive():
                pytest.fail(f"containerd did not start:\n{proc.log_tail()}")
            time.sleep(0.2)
        images.import_into(built_images, address=cd.address, namespace=NAMESPACE)
        yield cd
    finally:
        _cleanup_containers(cd)
        proc.popen.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=15)
        proc.stop()
        _remove_cgroups(cd.cgroup_parent)
        leftover_mounts = [m for m in mounts_under(directory) if m != str(directory)]
        unmount_all_under(directory)
        leftover_shims = cd.shim_sockets()
        directory.rmdir()
        for path in created:
            with contextlib.suppress(OSError):
                path.rmdir()
        assert not leftover_mounts, f"containerd left mounts behind: {leftover_mounts}"
        assert not leftover_shims, f"containerd left shim sockets behind: {leftover_shims}"
