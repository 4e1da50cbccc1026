"""The closed-loop benchmark's smoke run on the demo's real node: the operator's arm.

One step of load (``bench.closedloop.smoke``) on a fresh stack of the
benchmark's plant: Locust's shape replays it at the API's Service, the jobs go
on the stream on the trace's schedule, and the operator's autoscaler must
scale the API out at least once and the jobs must reach PostgreSQL. The hpa
and keda arms need metrics-server and KEDA, whose builds are kept out of
``make test``: they are not in this tier, and no smoke test of them runs yet
(``make bench-closedloop`` runs them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.closedloop import arms, smoke
from bench.closedloop.plant import attach
from harness.fixtures_node import DemoRuns

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]


def test_the_operator_scales_the_api_out_under_one_step_of_load(
    demo_runs: DemoRuns, tmp_path: Path
) -> None:
    current = demo_runs.current
    shared = attach(current.cp, current.refs, tmp_path)
    try:
        out = smoke.run(shared, arm="retention", run_dir=tmp_path)
    finally:
        shared.stop()
    print(out)
    plant = arms.Plant()
    assert out["api_max_replicas"] > plant.api_min
    assert out["operator_scale_events"] > 0
    assert out["requests"] > 0
    assert out["jobs_started"] == out["jobs_enqueued"] > 0
