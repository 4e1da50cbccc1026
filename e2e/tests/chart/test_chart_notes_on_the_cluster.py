"""NOTES.txt says what to do next, rendered by a server-side dry-run install.

Helm renders NOTES only on install, and even ``--dry-run=client`` wants a
reachable cluster, so these run against the local control plane.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

CHART = Path(__file__).resolve().parents[3] / "charts" / "retention-operator"
FULL = CHART / "ci" / "full-values.yaml"


def _notes(helm: Path, control_plane: ControlPlane, namespace: str, *args: str) -> str:
    out = subprocess.run(
        [
            # The session installs the CRD itself; the chart must not claim it here.
            str(helm), "install", "r", str(CHART), "--dry-run=server", "--skip-crds",
            "--set", "crds.install=false",
            "--kubeconfig", str(control_plane.kubeconfig), "--namespace", namespace, *args,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.split("NOTES:", 1)[1]


def test_notes_say_what_to_do_next(helm: Path, control_plane: ControlPlane, namespace: str) -> None:
    notes = _notes(helm, control_plane, namespace)
    assert f"kubectl -n {namespace} get pods" in notes
    assert "kubectl get rstack -w" in notes
    assert "docs/gitops.md" in notes


def test_notes_warn_when_monitoring_kinds_are_missing(
    helm: Path, control_plane: ControlPlane, namespace: str
) -> None:
    notes = _notes(
        helm, control_plane, namespace, "-f", str(FULL), "--set", "peering.enabled=false"
    )
    assert "no PodMonitor was created" in notes
    assert "no alerts were created" in notes
