"""Logs: one JSON object per line with the stack's identity; URLs lose their password."""

from __future__ import annotations

import json
import logging

from retention_workloads.logs import JsonFormatter, redact


def test_a_line_is_json_with_namespace_stack_and_extras():
    formatter = JsonFormatter(namespace="prod", stack="shop")
    record = logging.makeLogRecord({"msg": "job %s done", "args": ("a",), "levelname": "INFO"})
    record.job = "a"
    line = json.loads(formatter.format(record))
    assert line["msg"] == "job a done"
    assert (line["namespace"], line["stack"], line["job"]) == ("prod", "shop", "a")


def test_passwords_are_masked_in_urls():
    assert redact("redis://:s3cret@10.0.0.1:6379/0") == "redis://:***@10.0.0.1:6379/0"
    assert redact("postgresql://app:pw@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact("redis://10.0.0.1:6379/0") == "redis://10.0.0.1:6379/0"
