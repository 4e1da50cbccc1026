"""The operator as a real subprocess against a control plane.

Tests and ``make demo`` run ``python -m retention_operator`` exactly as a user
would (JSON logs to a file, metrics and liveness on loopback ports) and read
its ``/metrics`` to count the mutating requests it sent.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from harness.procs import Proc, free_port, start, wait_until

_SAMPLE = re.compile(r"^retention_operator_kube_requests_total\{([^}]*)\} ([0-9.e+]+)$")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class OperatorProcess:
    """One running operator; ``restart`` keeps its ports and log directory."""

    kubeconfig: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 0
    health_port: int = 0
    proc: Proc | None = None
    restarts: int = 0

    def start(self) -> None:
        """Start the operator and wait until its liveness endpoint answers."""
        self.metrics_port = self.metrics_port or free_port()
        self.health_port = self.health_port or free_port()
        env = {
            "KUBECONFIG": str(self.kubeconfig),
            "RETENTION_METRICS_PORT": str(self.metrics_port),
            "RETENTION_HEALTH_PORT": str(self.health_port),
            "RETENTION_BIND_ADDRESS": "127.0.0.1",
            "RETENTION_RETRY_SECONDS": "2",
            "RETENTION_AUTOSCALER_TICK_SECONDS": "1",
            **self.env,
        }
        name = "operator" if self.restarts == 0 else f"operator-{self.restarts}"
        self.proc = start(
            name, [sys.executable, "-m", "retention_operator"], log_dir=self.log_dir, env=env
        )
        wait_until(
            lambda: (
                httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2).status_code
                == 200
            ),
            what="operator /healthz",
            timeout=60,
            proc=self.proc,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=15)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def kill(self) -> None:
        """SIGKILL the operator at once, as the kernel's OOM killer or a lost node would:
        no clean-up handler runs and nothing in flight is finished. ``start`` brings up
        the next one (its log is ``operator-<n>.log``)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.popen.wait(timeout=10)
            self.proc = None
            self.restarts += 1

    def metrics_text(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def mutating_requests(self) -> int:
        """Mutating requests (POST, PUT, PATCH, DELETE) this process has sent so far."""
        total = 0.0
        for line in self.metrics_text().splitlines():
            match = _SAMPLE.match(line)
            if match and any(f'verb="{verb}"' in match.group(1) for verb in MUTATING):
                total += float(match.group(2))
        return int(total)

    def log_tail(self, lines: int = 60) -> str:
        return self.proc.log_tail(lines) if self.proc else ""
