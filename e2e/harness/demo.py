"""``make demo``: the local control plane with the operator and a sample stack.

Until the operator lands this brings up the control plane only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness import controlplane


def up(run_dir: Path) -> int:
    """Start (or reuse) the control plane; print ``KUBECONFIG=<path>`` last. Returns 0."""
    cp = controlplane.ensure_control_plane(run_dir / "cluster")
    print(f"control plane: {cp.server} (logs in {cp.run_dir / 'logs'})", file=sys.stderr)
    print(f"KUBECONFIG={cp.kubeconfig}")
    return 0


def down(run_dir: Path) -> int:
    """Stop whatever ``up`` started. Returns 0 when nothing was running too."""
    cp = controlplane.ControlPlane.load(run_dir / "cluster")
    if cp is not None:
        cp.stop()
    print("demo: stopped", file=sys.stderr)
    return 0
