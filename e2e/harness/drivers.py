"""Test drivers: a process that takes one JSON command per stdin line and answers one
JSON object per stdout line (``{"result": ...}`` or ``{"error": ...}``).

The queue-kind tests drive the real libraries this way, step by step: the BullMQ
driver (Node.js, :func:`harness.node_apps.node_driver`) and the RQ driver (Python, in
a process of its own because RQ reads its key prefix from the environment at import).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RQ_DRIVER = REPO / "e2e" / "queues" / "rq" / "driver.py"


class Driver:
    """A running driver; call it with an op and arguments to get the result.

    Raises RuntimeError with the driver's stderr when it dies, or with its message
    when it answers an error.
    """

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self._stderr = cwd / "driver.stderr"
        cwd.mkdir(parents=True, exist_ok=True)
        self._log = self._stderr.open("wb")
        self._popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )

    def __call__(self, op: str, **args: Any) -> Any:
        assert self._popen.stdin is not None and self._popen.stdout is not None
        self._popen.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._popen.stdin.flush()
        line = self._popen.stdout.readline()
        if not line:
            raise RuntimeError(f"driver exited: {self._stderr.read_text(errors='replace')}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"driver {op}: {answer['error']}")
        return answer.get("result")

    def close(self) -> None:
        """Ask the driver to quit, close its stdin, and kill it if it lingers."""
        with contextlib.suppress(Exception):
            self("quit")
        with contextlib.suppress(OSError):
            assert self._popen.stdin is not None
            self._popen.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=10)
        if self._popen.poll() is None:
            self._popen.kill()
            self._popen.wait(timeout=5)
        self._log.close()


def rq_driver(*, run_dir: Path, env: dict[str, str]) -> Driver:
    """The RQ driver (``e2e/queues/rq/driver.py``) with this interpreter and ``env``."""
    path = os.pathsep.join([str(RQ_DRIVER.parent), os.environ.get("PYTHONPATH", "")])
    return Driver([sys.executable, str(RQ_DRIVER)], cwd=run_dir, env={**env, "PYTHONPATH": path})
