"""The API and worker containers get their queue's names the way its library takes them."""

from __future__ import annotations

from typing import Any

import pytest

import retention_contract as contract
from retention_operator.builders.env import queue_env

from .conftest import MakeStack

EXTERNAL = {"external": {"url": "redis://r:6379"}}


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        (
            {"bullmq": {"name": "emails", "prefix": "{bull}"}},
            {"RETENTION_QUEUE_KIND": "bullmq", "RETENTION_QUEUE_NAME": "emails",
             "RETENTION_QUEUE_PREFIX": "{bull}"},
        ),
        (
            {"rq": {"name": "high", "prefix": "{rq}"}},
            {"RETENTION_QUEUE_KIND": "rq", "RETENTION_QUEUE_NAME": "high",
             "RETENTION_QUEUE_PREFIX": "{rq}", "RQ_KEY_PREFIX": "{rq}"},
        ),
        (
            {"celery": {"prioritySteps": [0, 5]}},
            {"RETENTION_QUEUE_KIND": "celery", "RETENTION_QUEUE_NAME": "celery",
             "RETENTION_QUEUE_PREFIX": "", "RETENTION_QUEUE_PRIORITY_STEPS": "0,5"},
        ),
        (
            {"list": {"key": "jobs", "inProgressKey": "jobs:busy"}},
            {"RETENTION_QUEUE_KIND": "list", "RETENTION_QUEUE_KEY": "jobs",
             "RETENTION_QUEUE_IN_PROGRESS_KEY": "jobs:busy"},
        ),
    ],
)  # fmt: skip
def test_each_kind_gets_its_own_names(
    make_stack: MakeStack, queue: dict[str, Any], expected: dict[str, str]
) -> None:
    stack = make_stack(workers={"queue": queue}, redis=EXTERNAL)
    env = {entry["name"]: entry["value"] for entry in queue_env(stack)}
    assert env == expected
    assert contract.ENV_QUEUE_STREAM not in env


def test_a_stream_keeps_its_names_and_no_kind(make_stack: MakeStack) -> None:
    env = {entry["name"]: entry["value"] for entry in queue_env(make_stack())}
    assert contract.ENV_QUEUE_KIND not in env, "existing stacks' pods do not change"
    assert env[contract.ENV_QUEUE_GROUP] == contract.DEFAULT_QUEUE_GROUP
