"""The node tier's tests share one demo, started twice in their first test's setup.

pytest-timeout counts a test's fixture setup with its body, so the first test to use
``demo_runs`` would carry both demo starts (minutes on a loaded machine) inside its
own bound. Tests of the demo are timed by their bodies alone; the fixture is bounded
by the harness's own waits (``harness.demo.start`` fails on each step's timeout).

A test of the demo that fails keeps a copy of every pod's log as the kubelet has it at
that moment (``<run dir>/failed/<test>/pods``, named in the report): the kubelet
deletes a pod's log with the pod, and a later test may replace the pods that failed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    default = float(config.getini("timeout"))
    for item in items:
        if HERE not in item.path.parents or "demo_runs" not in getattr(item, "fixturenames", ()):
            continue
        marker = item.get_closest_marker("timeout")
        seconds = marker.args[0] if marker and marker.args else default
        item.add_marker(pytest.mark.timeout(seconds, func_only=True))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    runs = getattr(item, "funcargs", {}).get("demo_runs")
    if report.when != "call" or not report.failed or runs is None:
        return
    pods = runs.run_dir / "cluster" / "node" / "var-log" / "pods"
    kept = runs.run_dir / "failed" / item.name / "pods"
    if not pods.is_dir():
        return
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(pods, kept, symlinks=False, ignore_dangling_symlinks=True)
    report.sections.append(("pod logs", f"every pod's log at the failure: {kept}"))
