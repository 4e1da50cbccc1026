"""pytest fixtures of the ``node`` tier: the demo on a real node, run twice.

``demo_runs`` is session-scoped: it runs the demo (``harness.demo.start``) in
a temporary folder, stops it (``down``), records what the stop left behind,
and runs it again; the tests share the second run's cluster, PostgreSQL and
stack, and restore whatever they change. These tests need root (network
namespaces, mounts, cgroups); without it they fail and say so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from harness import demo
from harness.node.realnode import leftovers


@dataclass
class DemoRuns:
    """The two demo runs of the session: the first (stopped since) and the current one."""

    run_dir: Path
    first_seconds: float
    first_job_id: str
    left_after_down: list[str]
    host_rules_changed: bool
    current: demo.Demo


def _host_rules() -> str:
    """The host's own iptables rules (the node's live in its namespace)."""
    done = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False)
    # Counters and the timestamp comments change by themselves.
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith(("#", ":")))


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRuns]:
    """``make demo``, ``make demo-down``, ``make demo`` again, in a folder of the session's."""
    if os.geteuid() != 0:
        pytest.fail("the node tier needs root: network namespaces, mounts and cgroups")
    run_dir = tmp_path_factory.mktemp("demo")
    rules = _host_rules()
    # Everything from the first start on is inside the try: a start that fails or
    # times out (pytest-timeout raises in this thread) still stops what it started.
    try:
        first = demo.start(run_dir)
        assert first.cp.node is not None
        net, root = first.cp.node.net, first.cp.node.root
        demo.down(run_dir)
        runs = DemoRuns(
            run_dir=run_dir,
            first_seconds=first.seconds,
            first_job_id=first.job_id,
            left_after_down=leftovers(net, root),
            host_rules_changed=_host_rules() != rules,
            current=demo.start(run_dir),
        )
        yield runs
    finally:
        demo.down(run_dir)


@pytest.fixture
def demo_api(demo_runs: DemoRuns) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient on the current demo's cluster (admin)."""
    api = config.new_client_from_config(config_file=str(demo_runs.current.cp.kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()
