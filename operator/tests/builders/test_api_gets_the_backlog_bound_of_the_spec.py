"""spec.api.maxBacklog reaches the API as RETENTION_QUEUE_MAX_BACKLOG; a bad bound is named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import retention_contract as contract
from retention_operator.builders.api import build_api_deployment

from .conftest import MakeStack


def _env(make_stack: MakeStack, **api: object) -> dict[str, str]:
    deployment = build_api_deployment(make_stack(api={"image": "app:1", **api}))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {entry["name"]: entry.get("value") for entry in container["env"]}


def test_the_bound_is_passed_to_the_api(make_stack: MakeStack) -> None:
    assert _env(make_stack, maxBacklog=50000)[contract.ENV_QUEUE_MAX_BACKLOG] == "50000"


def test_no_bound_sets_no_variable(make_stack: MakeStack) -> None:
    assert contract.ENV_QUEUE_MAX_BACKLOG not in _env(make_stack)


@pytest.mark.parametrize("bad", [0, -1, "many"])
def test_a_bound_below_one_is_refused_by_name(make_stack: MakeStack, bad: object) -> None:
    with pytest.raises(ValidationError, match=r"api\.maxBacklog|api\.max_backlog"):
        make_stack(api={"image": "app:1", "maxBacklog": bad})
