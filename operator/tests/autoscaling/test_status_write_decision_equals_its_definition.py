"""``report.needs_write`` answers what its definition by two views of the status says.

The definition, written out here as it reads: merge the patch into what was last
written; nothing changed, no write; the *material* view (derived fields left out, a
drifting field only present or not, None or not) changed, a write; the *loud* view
(silent fields left out) changed, a write once the refresh period is over. The
function walks the patch once instead of building the views; random statuses and
patches over the real field names (nested, with deletions, None values and fields
that turn from numbers into blocks) must get the same answer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from retention_operator.autoscaling import report

KEYS = [
    *sorted(report._DRIFTING | report._SILENT | report._DERIVED),
    "autoscaling",
    "api",
    "workers",
    "desiredReplicas",
    "lastDecision",
    "forecast",
]
SCALARS = st.none() | st.integers(-2, 2) | st.sampled_from(["a", "b"]) | st.floats(0, 2)
STATUS = st.recursive(
    SCALARS,
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)
DOCUMENT = st.dictionaries(st.sampled_from(KEYS), STATUS, max_size=5)


def _merged(previous: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(previous)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            before = out.get(key)
            out[key] = _merged(before if isinstance(before, dict) else {}, value)
        else:
            out[key] = value
    return out


def _material(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _material(v, k) for k, v in value.items() if k not in report._DERIVED}
    if key in report._DRIFTING:
        return value is not None
    return value


def _loud(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _loud(v) for k, v in value.items() if k not in report._SILENT}
    return value


def _by_definition(previous: dict[str, Any], patch: dict[str, Any], *, refresh_over: bool) -> bool:
    merged = _merged(previous, patch)
    if merged == previous:
        return False
    if _material(merged) != _material(previous):
        return True
    return _loud(merged) != _loud(previous) and refresh_over


@settings(max_examples=100, deadline=None)
@given(previous=DOCUMENT, patch=DOCUMENT, refresh_over=st.booleans())
# The cases random documents seldom meet: a silent count alone, a drifting number alone,
# a drifting number going missing, blocks under a derived and a silent field.
@example({"api": {"failedTicks": 1, "p95Milliseconds": 3}}, {"api": {"failedTicks": 2}}, True)
@example({"api": {"p95Milliseconds": 3}}, {"api": {"p95Milliseconds": 4}}, False)
@example({"api": {"p95Milliseconds": 3}}, {"api": {"p95Milliseconds": 4}}, True)
@example({"api": {"p95Milliseconds": 3}}, {"api": {"p95Milliseconds": None}}, False)
@example({"jobsPerSecond": {"a": 1}}, {"jobsPerSecond": {"a": 2}}, False)
@example({"lastReason": {"a": 1}}, {"lastReason": {"a": 2}}, False)
@example({"lastReason": {"backlog": 1}}, {"lastReason": {"backlog": 2}}, True)
def test_the_walk_answers_as_the_views_do(
    previous: dict[str, Any], patch: dict[str, Any], refresh_over: bool
) -> None:
    since_last = 60.0 if refresh_over else 1.0
    expected = _by_definition(previous, patch, refresh_over=refresh_over)
    assert report.needs_write(previous, patch, since_last=since_last, refresh=30.0) == expected


@settings(max_examples=50, deadline=None)
@given(previous=DOCUMENT, refresh_over=st.booleans())
def test_a_patch_of_what_was_written_is_no_write(
    previous: dict[str, Any], refresh_over: bool
) -> None:
    written = _merged({}, previous)
    since_last = 60.0 if refresh_over else 1.0
    assert not report.needs_write(written, written, since_last=since_last, refresh=30.0)
