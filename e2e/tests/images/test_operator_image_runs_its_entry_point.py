"""The operator image as the chart runs it: uid 65532, read-only root, /tmp its only writable path.

Without a cluster to reach (a kubeconfig points at a port nothing listens on
in the container's own network namespace), the entry point still gets as far
as it can: settings read, JSON logging configured, the metrics endpoint served,
kopf running and its watches retrying the API server (the start waits for
their cache); SIGTERM stops it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.images import BuiltImage

pytestmark = [pytest.mark.node, pytest.mark.timeout(180)]

_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: nobody
  user: {token: not-a-real-token}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
"""

_METRICS = (
    "import urllib.request\n"
    "body = urllib.request.urlopen('http://127.0.0.1:8080/metrics', timeout=5).read().decode()\n"
    "print('python_info' in body)\n"
)


def test_the_operator_starts_serves_metrics_and_stops_on_sigterm(
    containerd, built_images: dict[str, BuiltImage], tmp_path: Path
) -> None:
    kube = tmp_path / "kube"
    kube.mkdir()
    (kube / "config").write_text(_KUBECONFIG)
    (kube / "config").chmod(0o644)
    writable = tmp_path / "tmp"
    writable.mkdir(mode=0o1777)
    writable.chmod(0o1777)
    operator = containerd.run(
        built_images["operator"],
        "operator",
        env={"KUBECONFIG": "/etc/kube/config"},
        mounts=[(kube, "/etc/kube", True), (writable, "/tmp", False)],
    )
    assert operator.uid() == 65532
    # The kube layer's watch cache retries the API server that is not there.
    containerd.wait_for_output(operator, "broke, again in", timeout=90)
    probe = containerd.exec(operator, ["python", "-c", _METRICS])
    assert probe.stdout.strip() == "True", probe.stdout + probe.stderr
    lines = [json.loads(line) for line in operator.output().splitlines() if line.strip()]
    # Its start waits for the children's cache, which needs the API server: the
    # watches' retries, as JSON lines, are as far as it gets here.
    assert any("broke, again in" in line["message"] for line in lines)
    assert containerd.stop(operator, "SIGTERM", timeout=30) == 0, operator.output()
