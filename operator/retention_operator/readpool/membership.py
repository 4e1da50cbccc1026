"""Replication lag from LSNs, and whether a replica belongs in the read pool: pure functions.

Lag is measured without trusting any clock but the operator's, and without
writing to the database. Each tick the operator reads the primary's current
WAL position (``pg_current_wal_lsn()``) and then the replica's replayed
position (``pg_last_wal_replay_lsn()``). A replica that has not yet replayed
the position the primary had at tick *k* is at least ``now - t_k`` behind,
and, having replayed everything of tick *k-1*, at most ``now - t_(k-1)``. The
lag reported is the lower bound, so a replica leaves the pool only when it is
surely past the bound; an idle primary (no new WAL) never looks lagged, which
``now() - pg_last_xact_replay_timestamp()`` would.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

REJOIN_SHARE = 0.5
"""A replica out of the pool for lag comes back once its lag is at most this share of the bound,
so one hovering at the bound does not flap in and out every tick."""


def parse_lsn(text: str) -> int:
    """Return a PostgreSQL LSN (``16/B374D848``) as an integer; ValueError if malformed."""
    high, _, low = text.partition("/")
    if not high or not low:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass
class LagTracker:
    """The primary's positions (time, LSN) that one replica has not replayed yet."""

    pending: deque[tuple[float, int]] = field(default_factory=deque)

    def observe(self, *, now: float, primary_lsn: int, replay_lsn: int) -> float:
        """Record one tick's readings and return the replica's lag (lower bound), in seconds.

        ``primary_lsn`` must have been read before ``replay_lsn``.
        """
        self.pending.append((now, primary_lsn))
        while self.pending and self.pending[0][1] <= replay_lsn:
            self.pending.popleft()
        return now - self.pending[0][0] if self.pending else 0.0

    def reset(self) -> None:
        """Forget the history (the replica could not be read; its lag is unknown)."""
        self.pending.clear()


@dataclass(frozen=True)
class Verdict:
    """Whether a replica serves reads, and why not."""

    in_pool: bool
    message: str


def decide(*, was_in_pool: bool, lag: float | None, error: str | None, max_lag: float) -> Verdict:
    """Return whether a replica serves reads after this tick.

    A replica that cannot be read (``error``) or lags past ``max_lag`` is out;
    one that is out comes back when its lag is at most ``REJOIN_SHARE`` of the bound.
    """
    if error is not None:
        return Verdict(False, error)
    assert lag is not None
    if lag > max_lag:
        return Verdict(False, f"replication lag {lag:.1f}s is past maxLagSeconds {max_lag:g}s")
    if not was_in_pool and lag > max_lag * REJOIN_SHARE:
        return Verdict(
            False,
            f"replication lag {lag:.1f}s: rejoins at {max_lag * REJOIN_SHARE:g}s or less",
        )
    return Verdict(True, "")
