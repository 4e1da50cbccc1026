"""Prometheus Operator against the local control plane: its CRDs, the operator, its output.

:func:`install_crds` applies the CRDs of the pinned release (from its Go
module, no build); :class:`PrometheusOperator` runs the operator itself, built
by ``build-gitops.sh prometheus-operator`` (only ``make monitoring-test`` asks
for it), with the admin client certificate. :func:`generated_config` reads the
scrape configuration it writes for a ``Prometheus`` object into the Secret
``prometheus-<name>``. Debian's Prometheus is built without Kubernetes service
discovery and refuses that configuration, so the same build makes the
Prometheus that Prometheus Operator's module requires (:func:`prometheus_binary`),
which the harness runs like its own.
"""

from __future__ import annotations

import base64
import gzip
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.gitops import REPO, tools_dir
from harness.procs import Proc, free_port, start, wait_until

WRAPPER_GO_MOD = REPO / "e2e" / "controlplane" / "prometheus-operator" / "go.mod"
CRD_NAMES = (
    "alertmanagerconfigs",
    "alertmanagers",
    "podmonitors",
    "probes",
    "prometheusagents",
    "prometheuses",
    "prometheusrules",
    "scrapeconfigs",
    "servicemonitors",
    "thanosrulers",
)


def version() -> str:
    """The Prometheus Operator release the wrapper module pins (its go.mod is the one pin)."""
    match = re.search(
        r"github\.com/prometheus-operator/prometheus-operator (v\S+)", WRAPPER_GO_MOD.read_text()
    )
    if match is None:
        raise RuntimeError(f"{WRAPPER_GO_MOD} requires no prometheus-operator version")
    return match[1]


def _dir(*extra: str) -> Path:
    return tools_dir(*extra) / f"prometheus-operator-{version()}"


def prometheus_binary() -> Path:
    """The Prometheus built beside Prometheus Operator (with Kubernetes discovery)."""
    return _dir("prometheus-operator") / "prometheus"


def prometheus_version(binary: Path) -> str:
    """``vX.Y.Z`` of a prometheus binary, as a ``Prometheus`` object's spec.version wants it."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    match = re.search(r"version (\d+\.\d+\.\d+)", out.stdout + out.stderr)
    if match is None:
        raise RuntimeError(f"{binary} --version says no version: {out.stdout!r}")
    return f"v{match[1]}"


def _crd_files(names: tuple[str, ...]) -> list[str]:
    args = []
    for name in names:
        args += ["-f", str(_dir() / "crds" / f"monitoring.coreos.com_{name}.yaml")]
    return args


def install_crds(cp: ControlPlane, names: tuple[str, ...] = CRD_NAMES) -> None:
    """Apply the release's CRDs (``names``: plurals; default all) and wait until Established.

    All ten are about 4 MB; a test that needs PodMonitor alone installs only it.
    """
    cp.kubectl("apply", "--server-side", *_crd_files(names), timeout=120)
    cp.wait_established(*(f"{name}.monitoring.coreos.com" for name in names))


def uninstall_crds(cp: ControlPlane, names: tuple[str, ...] = CRD_NAMES) -> None:
    """Delete those CRDs (and every object of their kinds); waits until they are gone."""
    cp.kubectl("delete", "--ignore-not-found", "--wait=true", *_crd_files(names), timeout=120)


@dataclass
class PrometheusOperator:
    """The prometheus-operator process, limited to ``namespaces``."""

    cp: ControlPlane
    log_dir: Path
    namespaces: list[str]
    port: int = 0
    proc: Proc | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start it and wait until its /healthz answers; NotReady with the log tail if not."""
        binary = _dir("prometheus-operator") / "prometheus-operator"
        pki = self.cp.run_dir / "pki"
        self.port = self.port or free_port()
        argv = [
            str(binary),
            f"--apiserver={self.cp.server}",
            f"--ca-file={pki / 'ca.crt'}",
            f"--cert-file={pki / 'admin.crt'}",
            f"--key-file={pki / 'admin.key'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--namespaces={','.join(self.namespaces)}",
            "--log-format=json",
        ]
        self.proc = start("prometheus-operator", argv, log_dir=self.log_dir)
        wait_until(
            lambda: (
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
            ),
            what="prometheus-operator /healthz",
            timeout=60,
            proc=self.proc,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=15)
            self.proc = None


def prometheus_object(
    name: str, namespace: str, *, cp: ControlPlane, prometheus_version: str
) -> dict[str, Any]:
    """A ``Prometheus`` that selects the PodMonitors of every namespace Prometheus Operator
    watches and reaches the API server with the admin certificate (it runs outside the
    cluster, as the harness's).

    No replica: the harness's own Prometheus loads the configuration
    (:func:`rendered_config`). A pod of it would need Prometheus's image, which the node
    cannot pull (no network) and the project does not build; Prometheus Operator writes
    the configuration and the StatefulSet all the same.
    """
    pki = cp.run_dir / "pki"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "version": prometheus_version,
            "replicas": 0,
            "scrapeInterval": "1s",
            "evaluationInterval": "1s",
            "podMonitorSelector": {},
            "podMonitorNamespaceSelector": {},
            "apiserverConfig": {
                "host": cp.server,
                "tlsConfig": {
                    "caFile": str(pki / "ca.crt"),
                    "certFile": str(pki / "admin.crt"),
                    "keyFile": str(pki / "admin.key"),
                },
            },
        },
    }


def rendered_config(
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    *,
    work: Path,
    reload_url: str,
) -> dict[str, Any]:
    """The configuration a pod of Prometheus ``name`` would start with.

    Prometheus Operator's configuration holds placeholders (``$(SHARD)``,
    ``$(POD_NAME)``) that the pod's ``init-config-reloader`` container fills
    in before Prometheus reads the file; without it, sharding keeps no target.
    This does the kubelet's part (the Secret's keys
    as files where the container mounts them, the environment it gives) and
    runs that container's command, the real config reloader with the
    StatefulSet's own arguments, as a process; its reload goes to
    ``reload_url`` instead of the pod's own Prometheus (the StatefulSet has no
    replica, :func:`prometheus_object`). Raises RuntimeError
    with the reloader's output if it fails.
    """
    sts: Any = apps.read_namespaced_stateful_set(f"prometheus-{name}", namespace)
    pod = sts.spec.template.spec
    [init] = [c for c in pod.init_containers or [] if c.name == "init-config-reloader"]
    volumes = {v.name: v for v in pod.volumes or []}
    mounts: dict[str, Path] = {}
    for mount in init.volume_mounts or []:
        host = work / mount.name
        host.mkdir(parents=True, exist_ok=True)
        secret = volumes[mount.name].secret
        if secret is not None:
            found: Any = core.read_namespaced_secret(str(secret.secret_name), namespace)
            for key, value in (found.data or {}).items():
                (host / key).write_bytes(base64.b64decode(value))
        mounts[mount.mount_path] = host
    pod_name = f"{sts.metadata.name}-0"
    env = {e.name: e.value for e in init.env or [] if e.value is not None}
    env.update({e.name: pod_name for e in init.env or [] if e.value_from is not None})

    def host_path(arg: str) -> str:
        # Longest first: /etc/prometheus/config is a prefix of .../config_out.
        for inside in sorted(mounts, key=len, reverse=True):
            if f"={inside}" in arg or arg.startswith(inside):
                return arg.replace(inside, str(mounts[inside]), 1)
        return arg

    args = [
        host_path(a)
        for a in init.args or []
        if not a.startswith(("--listen-address=", "--reload-url="))
    ]
    args.append(f"--reload-url={reload_url}")
    out = subprocess.run(
        [str(_dir("prometheus-operator") / "prometheus-config-reloader"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    target = next((a.split("=", 1)[1] for a in args if a.startswith("--config-envsubst-file=")), "")
    if out.returncode != 0 or not target:
        raise RuntimeError(f"init-config-reloader {args} failed: {out.stdout}{out.stderr}")
    config: dict[str, Any] = yaml.safe_load(Path(target).read_text())
    return config


def generated_config(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any] | None:
    """The configuration Prometheus Operator wrote for Prometheus ``name``; None until it has."""
    try:
        secret = core.read_namespaced_secret(f"prometheus-{name}", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = (secret.data or {}).get("prometheus.yaml.gz")
    if not data:
        return None
    config: dict[str, Any] = yaml.safe_load(gzip.decompress(base64.b64decode(data)))
    return config
