"""``kubectl logs`` of the operator's pod: one JSON object per line, stack lines name the stack.

Read through the kubelet of the real node, as a user reads them.
"""

from __future__ import annotations

import json

import pytest

from harness import demo
from harness.fixtures_node import DemoRuns

pytestmark = pytest.mark.node


def test_every_line_is_json_and_each_line_about_the_stack_names_it(demo_runs: DemoRuns) -> None:
    out = demo_runs.current.cp.kubectl(
        "logs", "-n", demo.OPERATOR_NAMESPACE, f"deployment/{demo.RELEASE}", "--tail=-1"
    )
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]
    about_stacks = [r for r in records if r.get("object", {}).get("kind") == "RetentionStack"]
    assert any(r["object"].get("name") == "demo" for r in about_stacks), records[-5:]
    for record in about_stacks:
        assert record["object"].get("namespace") and record["object"].get("name"), record


def test_requests_and_probes_are_not_logged_one_line_each(demo_runs: DemoRuns) -> None:
    out = demo_runs.current.cp.kubectl(
        "logs", "-n", demo.OPERATOR_NAMESPACE, f"deployment/{demo.RELEASE}", "--tail=-1"
    )
    messages = [json.loads(line).get("message", "") for line in out.splitlines() if line.strip()]
    assert not [m for m in messages if m.startswith("HTTP Request:")]
    assert not [m for m in messages if '"GET /healthz' in m]
