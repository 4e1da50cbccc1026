"""docs/gitops.md's Lua health check under gopher-lua, called as Argo CD calls it.

``harness.gitops.argocd_health`` runs the check through the project's runner
on gopher-lua v1.1.2 (Argo CD v3.5's pin): the object as the global ``obj``,
only the libraries Argo CD opens, the returned table read as status and
message. The messages are what Argo CD shows next to the health.
"""

from __future__ import annotations

import pytest

from harness.gitops import CheckerError, argocd_health
from harness.gitops_table import CASES, load_fixtures


def test_every_case_has_a_message() -> None:
    stacks = load_fixtures()
    for case, verdict in zip(CASES, argocd_health([stacks[c] for c in CASES]), strict=True):
        assert verdict.message, f"{case}: Argo CD shows the message next to the status"


def test_degraded_shows_the_operators_reason_and_message() -> None:
    (verdict,) = argocd_health([load_fixtures()["stalled"]])
    assert verdict.status == "Degraded"
    assert verdict.message.startswith("SecretNotFound: Secret shop/absent-credentials")


def test_generation_ahead_says_which_generations() -> None:
    stack = load_fixtures()["generation-ahead"]
    (verdict,) = argocd_health([stack])
    generation, observed = stack["metadata"]["generation"], stack["status"]["observedGeneration"]
    assert f"generation {generation} (last observed {observed})" in verdict.message


def test_a_paused_stack_is_suspended_saying_what_waits() -> None:
    stack = load_fixtures()["paused-starting"]
    (verdict,) = argocd_health([stack])
    ready = next(c for c in stack["status"]["conditions"] if c["type"] == "Ready")
    assert (verdict.status, verdict.message) == ("Suspended", ready["message"])


def test_argo_cd_gives_a_check_no_string_library() -> None:
    """Lua 5.4 would run this; Argo CD's gopher-lua has no ``string`` library open."""
    script = 'return {status = "Healthy", message = string.format("%d", 1)}'
    with pytest.raises(CheckerError, match="string"):
        argocd_health([load_fixtures()["ready"]], script=script)


def test_a_status_argo_cd_does_not_know_shows_as_unknown() -> None:
    (verdict,) = argocd_health([load_fixtures()["ready"]], script='return {status = "Ready"}')
    assert (verdict.status, verdict.message) == ("Unknown", "Lua returned an invalid health status")
