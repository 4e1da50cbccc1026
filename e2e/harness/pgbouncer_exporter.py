"""PgBouncer's exporter on the host, the program the project's pgbouncer-exporter image runs.

The same pinned requirement (``e2e/images/pgbouncer-exporter/requirements.txt``,
spreaker's prometheus-pgbouncer-exporter from PyPI, by hash) installed into a
virtualenv of Debian's python3 with Debian's psycopg2, prometheus-client, PyYAML
and python-json-logger (``install-packages.sh``), as in the image. The venv is
cached under ``$RETENTION_CACHE_DIR`` (default ``~/.cache/retention-stack``), keyed
by the requirements file's hash, and built again when missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "e2e" / "images" / "pgbouncer-exporter" / "requirements.txt"
SYSTEM_PYTHON = "/usr/bin/python3"


def _cache_root() -> Path:
    root = os.environ.get("RETENTION_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "retention-stack"


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=300)


def exporter_command() -> list[str]:
    """Return the argv prefix of the exporter (``pgbouncer-exporter``), building it if needed.

    A venv is complete once its stamp is written; an interrupted build is redone.
    Raises subprocess.CalledProcessError (pip's output in ``stderr``) if the install fails.
    """
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = _cache_root() / f"pgbouncer-exporter-{key}"
    stamp = venv / ".complete"
    binary = venv / "bin" / "pgbouncer-exporter"
    if stamp.is_file():
        return [str(binary)]
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / ".pgbouncer-exporter.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            _run([SYSTEM_PYTHON, "-m", "venv", "--system-site-packages", str(venv)])
            pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps"]
            _run([*pip, "--require-hashes", "--disable-pip-version-check", "-r", str(REQUIREMENTS)])
            stamp.write_text(key + "\n")
    return [str(binary)]
