"""Subprocess plumbing shared by the control plane and the services.

Each server runs in its own process group with its output in a log file, so a
failing test can show the log and teardown can kill everything the server
spawned. Nothing here knows about a particular server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Return True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Proc:
    """A server started by :func:`start`: its process, name and log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the log, or an empty string if there is none."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process itself (not its group), e.g. SIGHUP to reload."""
        os.kill(self.popen.pid, signum)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it after ``timeout`` seconds."""
        stop_group(self.popen.pid, timeout=timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)


def start(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start ``argv`` in a new session with stdout and stderr in ``log_dir/name.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    full_env = {**os.environ, **(env or {})}
    popen = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=cwd,
        start_new_session=True,
    )
    log.close()
    return Proc(name=name, popen=popen, log_path=log_path)


def stop_group(pid: int, *, timeout: float = 10.0) -> None:
    """Stop a process group led by ``pid``: SIGTERM, wait, then SIGKILL."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class NotReady(RuntimeError):
    """A server did not become ready in time; the message carries its log tail."""


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    proc: Proc | None = None,
    interval: float = 0.2,
) -> None:
    """Poll ``check`` until it returns True; raise NotReady with the log tail on timeout.

    Exceptions from ``check`` count as "not yet". If ``proc`` exits first, fail at once.
    """
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise NotReady(
                f"{what}: {proc.name} exited ({proc.popen.returncode})\n{proc.log_tail()}"
            )
        try:
            if check():
                return
        except Exception as exc:  # Any failure means "not ready yet".
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(interval)
    tail = proc.log_tail() if proc is not None else ""
    raise NotReady(f"{what}: not ready after {timeout:.0f}s {last_error}\n{tail}")
