"""The example's job: stands in for real work (a call to another service, a write)."""

from __future__ import annotations

import time

from settings import JOB_MS


def deliver(message: dict[str, object]) -> str:
    """Pretend to deliver ``message``; returns its recipient."""
    time.sleep(JOB_MS / 1000)
    return str(message.get("to", ""))
