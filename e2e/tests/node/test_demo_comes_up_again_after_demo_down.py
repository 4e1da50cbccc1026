"""`make demo`, `make demo-down`, `make demo` again: both end Ready, the stop leaves nothing.

The session's ``demo_runs`` fixture runs the demo twice in one folder with a
stop between (what a newcomer's second try does); here are its verdicts.
"""

from __future__ import annotations

import pytest

from harness.fixtures_node import DemoRuns

pytestmark = pytest.mark.node


def test_both_runs_end_ready_with_their_job_in_postgres(demo_runs: DemoRuns) -> None:
    # start() returns only once the stack is Ready and its job's row exists.
    assert demo_runs.first_job_id
    assert demo_runs.current.job_id
    print(
        f"demo: first run {demo_runs.first_seconds:.0f} s, second {demo_runs.current.seconds:.0f} s"
    )


def test_demo_down_leaves_no_process_mount_namespace_veth_route_or_cgroup(
    demo_runs: DemoRuns,
) -> None:
    assert demo_runs.left_after_down == []


def test_the_hosts_own_firewall_rules_are_never_touched(demo_runs: DemoRuns) -> None:
    assert not demo_runs.host_rules_changed
