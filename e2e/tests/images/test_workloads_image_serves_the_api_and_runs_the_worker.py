"""The workloads image as the API and worker pods run it: uid 10001, read-only root.

With no Redis or database to reach (the container's network namespace is its
own), the API still answers /healthz and says not ready on /readyz, and the
worker waits for them; both stop cleanly on SIGTERM. The probes run inside the
container, with the image's own python.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.images import BuiltImage

from .conftest import PYTHON_GET

pytestmark = [pytest.mark.node, pytest.mark.timeout(180)]


def _get(containerd, container, path: str) -> tuple[int, str]:
    probe = containerd.exec(container, ["python", "-c", PYTHON_GET, path])
    assert probe.returncode == 0, probe.stdout + probe.stderr
    code, _, body = probe.stdout.strip().partition(" ")
    return int(code), body


def test_the_api_answers_healthz_and_is_not_ready_without_its_backends(
    containerd, built_images: dict[str, BuiltImage], tmp_path: Path
) -> None:
    api = containerd.run(
        built_images["workloads"],
        "workloads-api",
        env={"RETENTION_STACK_NAME": "demo", "RETENTION_STACK_NAMESPACE": "ns"},
        mounts=[(tmp_path, "/tmp", False)],
    )
    assert api.uid() == 10001
    containerd.wait_for_output(api, "Uvicorn running", timeout=60)
    code, body = _get(containerd, api, "/healthz")
    assert code == 200, body
    code, body = _get(containerd, api, "/readyz")
    assert code == 503, body
    # The uid has a passwd entry: libraries that look the user up find one.
    who = containerd.exec(api, ["python", "-c", "import getpass; print(getpass.getuser())"])
    assert who.stdout.strip() == "app", who.stdout + who.stderr
    assert containerd.stop(api, "SIGTERM", timeout=30) == 0


def test_the_worker_waits_for_redis_and_the_database_and_stops_on_sigterm(
    containerd, built_images: dict[str, BuiltImage]
) -> None:
    worker = containerd.run(
        built_images["workloads"],
        "workloads-worker",
        args=["retention-worker"],
        env={"RETENTION_STACK_NAME": "demo", "RETENTION_STACK_NAMESPACE": "ns"},
    )
    assert worker.uid() == 10001
    out = containerd.wait_for_output(worker, "waiting for Redis and the database", timeout=60)
    line = next(line for line in out.splitlines() if "waiting for Redis" in line)
    assert '"namespace": "ns"' in line and '"stack": "demo"' in line, line
    assert containerd.stop(worker, "SIGTERM", timeout=30) == 0
