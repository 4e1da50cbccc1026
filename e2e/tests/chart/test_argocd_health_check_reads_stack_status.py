"""The Argo CD health check in docs/gitops.md, run by Debian's lua5.4 on stack status fixtures.

The Lua is taken from the argocd-cm example in the doc, so what users copy is
what is tested. Argo CD runs the script as a chunk with the object in the
global ``obj`` and reads the table it returns; the ``argocd_health`` fixture
(conftest.py) does the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import ArgoHealth

STATUS = Path(__file__).resolve().parent / "fixtures" / "status"

EXPECTED = {
    "unobserved": "Progressing",
    "new": "Progressing",
    "ready": "Healthy",
    "stalled": "Degraded",
    "paused": "Suspended",
    "generation-ahead": "Progressing",
    "deleting": "Progressing",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_health_of_each_stack_status(argocd_health: ArgoHealth, name: str) -> None:
    obj = yaml.safe_load((STATUS / f"{name}.yaml").read_text())
    status, message = argocd_health(obj)
    assert status == EXPECTED[name], message
    assert message, "Argo CD shows the message next to the status"


def test_degraded_shows_the_operators_reason_and_message(argocd_health: ArgoHealth) -> None:
    obj = yaml.safe_load((STATUS / "stalled.yaml").read_text())
    _, message = argocd_health(obj)
    assert message.startswith("SecretNotFound: Secret shop/orders-postgres")


def test_generation_ahead_says_which_generation(argocd_health: ArgoHealth) -> None:
    obj = yaml.safe_load((STATUS / "generation-ahead.yaml").read_text())
    _, message = argocd_health(obj)
    assert "generation 3" in message and "observed 2" in message


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in STATUS.glob("*.yaml")} == set(EXPECTED)
