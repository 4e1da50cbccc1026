"""The pause image: PID 1 of its sandbox as uid 65535, reaps orphans, exits 0 on SIGTERM/SIGINT.

The orphan comes the way it does in a pod: a second container shares the
sandbox's PID namespace, a process exec'd into it starts a child and exits,
the child becomes the sandbox's; when it dies, pause must reap it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from harness.images import BuiltImage

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_pause_exits_zero_at_once_on_a_stop_signal(
    containerd, built_images: dict[str, BuiltImage], sig: str
) -> None:
    pause = containerd.run(built_images["pause"], f"pause-{sig.lower()}")
    assert pause.status("NSpid").split()[-1] == "1"
    assert pause.uid() == 65535
    started = time.monotonic()
    assert containerd.stop(pause, sig, timeout=5) == 0
    assert time.monotonic() - started < 3


def test_pause_reaps_an_orphan_of_another_container_of_the_pod(
    containerd, built_images: dict[str, BuiltImage]
) -> None:
    pause = containerd.run(built_images["pause"], "pause-reaper")
    app = containerd.run(
        built_images["workloads"],
        "pause-reaper-app",
        args=["sleep", "300"],
        pid_namespace_of=pause,
    )
    # A process exec'd into the pod leaves a child behind: it becomes the sandbox's.
    probe = containerd.exec(app, ["/bin/sh", "-c", "sleep 300 & echo $!"])
    assert probe.returncode == 0, probe.stderr
    orphans = pause.children()
    assert list(orphans.values()) == ["S"], orphans
    os.kill(next(iter(orphans)), signal.SIGKILL)
    # A pause that did not reap would now hold a zombie.
    deadline = time.monotonic() + 5
    while pause.children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pause.children() == {}
    assert containerd.stop(app, "SIGKILL", timeout=10) != 0
    assert containerd.stop(pause, "SIGTERM", timeout=5) == 0
