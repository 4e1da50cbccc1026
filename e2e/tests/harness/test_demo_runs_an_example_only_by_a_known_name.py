"""``make demo EXAMPLE=<name>`` knows its examples: an unknown name is refused before
anything starts, with the names it knows; the BullMQ example's stack is the example's own
manifest on the local images, with the demo's slower jobs and the rate that follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import demo

IMAGES = ("workloads", "example-bullmq", *demo.STACK_IMAGES)
REFS = {name: f"localhost/{name}:x" for name in IMAGES}


def _stack(**where: str) -> dict[str, Any]:
    return demo.stack_manifest(
        refs=REFS, host="10.250.0.1", port=5432, user="retention", dbname="retention", **where
    )


def test_an_unknown_example_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no example 'rq': EXAMPLE is one of bullmq"):
        demo.start(tmp_path, example="rq")
    assert list(tmp_path.iterdir()) == [], "nothing started"


def test_the_bullmq_stack_is_the_examples_manifest_on_local_images() -> None:
    stack = _stack(example="bullmq", namespace="messages")
    spec = stack["spec"]
    assert (stack["metadata"]["name"], stack["metadata"]["namespace"]) == ("messages", "messages")
    assert spec["api"]["image"] == "localhost/example-bullmq:x"
    assert spec["workers"]["queue"] == {"bullmq": {"name": "messages", "prefix": "{bull}"}}
    assert spec["workers"]["env"] == [{"name": "EXAMPLE_JOB_MS", "value": str(demo.JOB_MS)}]
    # Four jobs of 200 ms at once: 20 jobs/s per worker, not the example's 80 for 50 ms.
    assert spec["workers"]["autoscaling"]["jobsPerWorkerPerSecond"] == 20
    assert spec["pgbouncer"]["database"]["host"] == "10.250.0.1"


def test_the_projects_own_stack_keeps_its_sample() -> None:
    stack = _stack()
    assert (stack["metadata"]["name"], stack["metadata"]["namespace"]) == ("demo", "demo")
    assert stack["spec"]["api"]["image"] == "localhost/workloads:x"
    managed = stack["spec"]["redis"]["managed"]
    assert (managed["image"], managed["exporter"]["image"]) == (
        "localhost/redis:x",
        "localhost/redis-exporter:x",
    )
    assert stack["spec"]["pgbouncer"]["exporter"] == {"image": "localhost/pgbouncer-exporter:x"}
    assert "autoscaling" not in stack["spec"]["workers"]
