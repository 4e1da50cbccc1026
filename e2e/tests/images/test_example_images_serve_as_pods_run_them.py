"""The examples' images (``make example-images``) run as their pods would: uid 10001, a
read-only root filesystem, the API answering /healthz and saying not ready on /readyz
while Redis is out of reach (the container's network namespace is its own), and
stopping on SIGTERM. Built with buildah on the project's Debian base; imported into the
session's containerd here (``make images`` does not build them).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import images

from .conftest import PYTHON_GET

pytestmark = [pytest.mark.node, pytest.mark.timeout(600)]

NODE_GET = (
    "fetch('http://127.0.0.1:8080' + process.argv[1])"
    ".then(async r => console.log(r.status, await r.text()))"
)


@pytest.fixture(scope="module")
def example_images(containerd: Any) -> dict[str, images.BuiltImage]:
    built = images.build(images.EXAMPLES)
    images.import_into(built, address=containerd.address)
    return built


def _get(containerd: Any, container: Any, probe: list[str], path: str) -> tuple[int, str]:
    done = containerd.exec(container, [*probe, path])
    assert done.returncode == 0, done.stdout + done.stderr
    code, _, body = done.stdout.strip().partition(" ")
    return int(code), body


@pytest.mark.parametrize(
    ("name", "probe", "listening"),
    [
        ("example-bullmq", ["node", "-e", NODE_GET], '"msg":"listening"'),
        ("example-rq", ["python", "-c", PYTHON_GET], "Uvicorn running"),
    ],
)
def test_the_example_api_serves_as_its_pod_runs_it(
    containerd: Any,
    example_images: dict[str, images.BuiltImage],
    name: str,
    probe: list[str],
    listening: str,
) -> None:
    api = containerd.run(example_images[name], f"{name}-api")
    assert api.uid() == 10001
    containerd.wait_for_output(api, listening, timeout=60)
    assert _get(containerd, api, probe, "/healthz")[0] == 200
    assert _get(containerd, api, probe, "/readyz")[0] == 503
    assert containerd.stop(api, "SIGTERM", timeout=30) == 0
