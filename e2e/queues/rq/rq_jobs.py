"""Jobs of the RQ tests: each holds until the test releases it (bounded in time)."""

from __future__ import annotations

import os
import time

from redis import Redis

HOLD_LIMIT_S = 60.0


def hold(tag: str) -> str:
    """Wait until the key ``release:<tag>`` exists (at most HOLD_LIMIT_S), then finish."""
    conn = Redis.from_url(os.environ["RETENTION_REDIS_URL"])
    deadline = time.monotonic() + HOLD_LIMIT_S
    while time.monotonic() < deadline and not conn.exists(f"release:{tag}"):
        time.sleep(0.02)
    return tag
