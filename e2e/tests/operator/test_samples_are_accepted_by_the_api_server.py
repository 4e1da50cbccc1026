"""Every sample in crds/samples and every example's stack passes the API server's schema
and CEL rules (a server-side dry run: nothing is stored)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
SAMPLES = sorted([*(REPO / "crds" / "samples").glob("*.yaml"), *REPO.glob("examples/*/stack.yaml")])


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_api_server_accepts_the_sample(
    path: Path, control_plane: ControlPlane, crd_installed: str, namespace: str, tmp_path: Path
) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"]["namespace"] = namespace
    copy = tmp_path / path.name
    copy.write_text(yaml.safe_dump(body))
    result = control_plane.kubectl_run(
        "apply", "--server-side", "--dry-run=server", "-f", str(copy)
    )
    assert result.returncode == 0, result.stderr
