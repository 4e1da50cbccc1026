"""What every real-service server of the harness shares.

Finding the Debian binaries (and failing with the fix when one is missing),
running a server as an unprivileged user when the tests run as root, and
picking distinct free ports. The server modules (:mod:`harness.redis_servers`,
:mod:`harness.postgres_servers`, :mod:`harness.prometheus_server`) build on it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.procs import NotReady, Proc, free_port, start, wait_until

PACKAGES_HINT = "run `make packages` (e2e/harness/install-packages.sh) to install it"


class MissingBinary(RuntimeError):
    """A server binary the tests need is not installed."""


def require_binary(name: str, *, search: Sequence[Path] = ()) -> str:
    """Return the path of executable ``name``, looked up in ``search`` then on PATH.

    Raises MissingBinary, with the command that installs it, when it is absent.
    """
    for folder in search:
        candidate = folder / name
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise MissingBinary(f"{name} not found; {PACKAGES_HINT}")
    return found


def pgbouncer_with_prepared_statements() -> str:
    """Return the path of a PgBouncer >= 1.21 (``max_prepared_statements``), building it once.

    Debian bookworm ships 1.18; ``e2e/harness/build-pgbouncer.sh`` builds a newer
    one from Debian's source package into ~/.cache/retention-stack (minutes the
    first time, cached after). Raises MissingBinary with the script's output on failure.
    """
    script = Path(__file__).with_name("build-pgbouncer.sh")
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=False, timeout=1200
    )
    last = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    if done.returncode != 0 or not last or not last[0].startswith("PGBOUNCER="):
        raise MissingBinary(f"could not build PgBouncer: {(done.stdout + done.stderr)[-2000:]}")
    return last[0].split("=", 1)[1]


def postgres_bin_dir() -> Path:
    """Return the folder with initdb/postgres/pg_isready/psql.

    ``RETENTION_PG_BIN`` wins; otherwise the newest /usr/lib/postgresql/<v>/bin
    (Debian keeps them off PATH). Raises MissingBinary when there is none.
    """
    override = os.environ.get("RETENTION_PG_BIN")
    if override:
        return Path(override)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise MissingBinary(f"PostgreSQL (initdb) not found; {PACKAGES_HINT}")
    return Path(initdb).parent


@dataclass(frozen=True)
class RunAs:
    """The identity a server that refuses root runs under.

    As root the server runs as ``user`` (``postgres``) through setpriv, which
    execs in place so the server keeps the process group and pid that
    :func:`harness.procs.start` gave it. Otherwise it runs as the current user.
    """

    uid: int
    gid: int
    prefix: tuple[str, ...]

    @classmethod
    def for_server(cls, user: str = "postgres") -> RunAs:
        """Return the identity to use; raise MissingBinary if root has no ``user`` to drop to."""
        if os.geteuid() != 0:
            return cls(uid=os.getuid(), gid=os.getgid(), prefix=())
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise MissingBinary(f"system user {user!r} not found; {PACKAGES_HINT}") from exc
        setpriv = require_binary("setpriv")
        prefix = (
            setpriv,
            f"--reuid={entry.pw_uid}",
            f"--regid={entry.pw_gid}",
            "--init-groups",
            "--",
        )
        return cls(uid=entry.pw_uid, gid=entry.pw_gid, prefix=prefix)

    @property
    def drops_root(self) -> bool:
        return bool(self.prefix)

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Return ``argv`` wrapped so that it runs under this identity."""
        return [*self.prefix, *argv]

    def private_dir(self, *, base: Path, name: str) -> Path:
        """Return a new folder that this identity owns and can reach.

        Without a drop of privileges it is ``base/name``. As root it is a fresh
        folder under the system temp dir, because pytest's base temp dir is
        0700 root and the unprivileged server could not reach anything in it;
        a symlink ``base/name`` points to it so it is found beside the logs.
        """
        if not self.drops_root:
            path = base / name
            path.mkdir(parents=True, exist_ok=True)
            return path
        path = Path(tempfile.mkdtemp(prefix=f"retention-{name}-"))
        os.chown(path, self.uid, self.gid)
        base.mkdir(parents=True, exist_ok=True)
        link = base / name
        # A link left by an earlier run points to a folder that is gone (or
        # belongs to that run): the new folder takes its place.
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(path)
        return path

    def own(self, *paths: Path) -> None:
        """Give ``paths`` to this identity (a no-op without a drop of privileges)."""
        if self.drops_root:
            for path in paths:
                os.chown(path, self.uid, self.gid)

    def remove(self, path: Path) -> None:
        """Remove a folder made by :meth:`private_dir` outside pytest's temp dir.

        Without a drop of privileges the folder is pytest's to keep or prune.
        """
        if self.drops_root:
            shutil.rmtree(path, ignore_errors=True)


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports on 127.0.0.1 that were free a moment ago.

    Raises RuntimeError if the kernel keeps handing back ports already taken.
    """
    ports: list[int] = []
    for _ in range(count * 20):
        port = free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"could not find {count} distinct free ports")


def start_ready(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start a server and wait until ``ready()`` is True.

    On timeout or early exit the process group is stopped and NotReady is
    raised with the tail of the server's log, so no half-started server is left.
    """
    proc = start(name, argv, log_dir=log_dir, cwd=cwd, env=env)
    try:
        wait_until(ready, what=what, timeout=timeout, proc=proc)
    except NotReady:
        proc.stop()
        raise
    return proc


def run_checked(
    argv: Sequence[str], *, what: str, timeout: float, log: Path, cwd: Path | None = None
) -> str:
    """Run a short command, append its output to ``log`` and return the output.

    Raises NotReady with the output when it fails or times out.
    """
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NotReady(f"{what}: timed out after {timeout:.0f}s: {exc.output!r}") from exc
    output = done.stdout + done.stderr
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n{output}\n")
    if done.returncode != 0:
        raise NotReady(f"{what}: exit {done.returncode}\n{output[-4000:]}")
    return output
