"""examples/rq/requirements.txt is uv.lock's example-rq side, so the example's image runs
the RQ the tests run (regenerate with ``make example-requirements``)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _uv() -> Path:
    pin = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["required-version"]
    return Path(sys.prefix) / f".uv-{pin.removeprefix('==')}" / "bin" / "uv"


def test_requirements_are_exported_from_the_lock() -> None:
    argv = [str(_uv()), "export", "-q", "--frozen", "--no-emit-project", "--no-header"]
    argv += ["--extra", "example-rq"]
    exported = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True).stdout
    committed = (REPO / "examples" / "rq" / "requirements.txt").read_text()
    assert committed == exported, "examples/rq/requirements.txt is stale: make example-requirements"
    assert "rq==" in committed and "--hash=sha256:" in committed
