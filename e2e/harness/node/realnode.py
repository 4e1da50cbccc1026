"""One real node beside the KWOK nodes: containerd, the kubelet and kube-proxy.

The node lives in a network namespace of its own (:mod:`harness.node.network`)
and, inside it, in a PID and mount namespace whose init is
:mod:`harness.node.init`. Every daemon enters those three namespaces with
``nsenter``; their files stay under the node's folder, and what they would
write to the host's own paths (``/run``, ``/var/log``, ``/var/lib/cni``) goes to
a tmpfs or a bind mount that only the node's mount namespace sees. So:

- stopping the init stops everything (the kernel kills a PID namespace with
  its init), and the mounts vanish with the last process of the namespace;
- ``make cluster-down`` after a crash finds what to remove in ``node.json``.

Callers: :mod:`harness.controlplane` (``start_control_plane(real_node=True)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness import images
from harness import pki as pki_mod
from harness.node import cgroups, configs, network
from harness.node.network import NodeNetwork
from harness.procs import NotReady, Proc, start, stop_group, wait_until

NODE_NAME = "real-node"
# Every node says what it is; tests and the demo select on it.
LABEL_NODE_KIND = "retention.dev/node-kind"
INIT = Path(__file__).with_name("init.py")
# Host folders the node's mount namespace binds over; made when missing and
# removed again at teardown if they are still empty.
HOST_MOUNT_POINTS = ("/var/lib/cni",)


def kubeconfig(*, server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, object]:
    """A kubeconfig with one cluster and one client certificate, embedded by path."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }


@dataclass
class RealNode:
    """A running (or half-started) real node and what stopping it must undo."""

    net: NodeNetwork
    root: Path
    cgroup_root: str
    holder_pid: int = 0
    init_pid: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    made_dirs: list[str] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict, repr=False)

    @property
    def layout(self) -> configs.NodeLayout:
        return configs.NodeLayout(self.root)

    @property
    def state_path(self) -> Path:
        return self.root / "node.json"

    @property
    def containerd_address(self) -> Path:
        """containerd's socket as the host sees it, through the init's root."""
        return Path(f"/proc/{self.init_pid}/root{configs.CONTAINERD_SOCKET}")

    def save(self) -> None:
        data = {
            "slot": self.net.slot,
            "root": str(self.root),
            "cgroup_root": self.cgroup_root,
            "holder_pid": self.holder_pid,
            "init_pid": self.init_pid,
            "pids": self.pids,
            "made_dirs": self.made_dirs,
        }
        self.state_path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, root: Path) -> RealNode | None:
        """Return the node recorded under ``root``, or None if there is none."""
        path = root / "node.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(
            net=NodeNetwork(int(data["slot"])),
            root=Path(data["root"]),
            cgroup_root=data["cgroup_root"],
            holder_pid=int(data["holder_pid"]),
            init_pid=int(data["init_pid"]),
            pids={k: int(v) for k, v in data["pids"].items()},
            made_dirs=list(data["made_dirs"]),
        )

    def enter(self, argv: list[str]) -> list[str]:
        """Return ``argv`` wrapped to run inside the node (its net, mount and PID namespaces)."""
        return ["nsenter", "-t", str(self.init_pid), "-m", "-n", "-p", "--", *argv]

    def run(self, argv: list[str], *, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the node; the caller checks the result."""
        return subprocess.run(
            self.enter(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def _must(self, argv: list[str]) -> None:
        done = self.run(argv)
        if done.returncode != 0:
            raise NotReady(f"real node: {' '.join(argv)}: {done.stderr.strip()}")

    def start_daemon(self, name: str, argv: list[str], *, log_dir: Path) -> Proc:
        """Start a daemon inside the node, in its own process group, logging to ``log_dir``."""
        proc = start(name, self.enter(argv), log_dir=log_dir)
        self.procs[name] = proc
        self.pids[name] = proc.pid
        self.save()
        return proc

    def stop_daemon(self, name: str) -> None:
        """Stop one daemon (SIGTERM, then SIGKILL); the node and its pods stay."""
        pid = self.pids.pop(name, None)
        if pid is not None:
            stop_group(pid, timeout=15)
        self.procs.pop(name, None)
        self.save()

    def restart_daemon(self, name: str, *, log_dir: Path, down_seconds: float = 0.0) -> Proc:
        """Stop one daemon (the kubelet, say) and start it again with the same command line,
        after ``down_seconds``; containers keep running meanwhile (their shims are
        containerd's). Returns the new process; the caller waits for what it needs."""
        argv = Path(f"/proc/{self.pids[name]}/cmdline").read_bytes().split(b"\0")[:-1]
        self.stop_daemon(name)
        time.sleep(down_seconds)
        proc = start(name, [a.decode() for a in argv], log_dir=log_dir)
        self.procs[name] = proc
        self.pids[name] = proc.pid
        self.save()
        return proc

    def stop(self) -> list[str]:
        """Stop every process of the node and remove what it made; returns what was left.

        Safe on a half-started node and after a crash (absent parts are fine).
        """
        # The init exits on SIGTERM and the kernel kills its PID namespace with
        # it: daemons and containers alike, at once. The node is thrown away,
        # so nothing is gained by stopping them one by one.
        for pid in (self.init_pid, self.holder_pid):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL if pid == self.holder_pid else signal.SIGTERM)
        # A crashed start may not have recorded its last daemon: wait too for every
        # process that names the node's folder (an nsenter outlives its child briefly).
        known = [p for p in (self.init_pid, self.holder_pid, *self.pids.values()) if p]
        _wait_gone(known + [pid for pid, _ in _processes_naming(self.root)])
        left = cgroups.remove(self.cgroup_root)
        network.destroy(self.net)
        for path in self.made_dirs:
            with contextlib.suppress(OSError):
                Path(path).rmdir()
        if self.net.exists():
            left.append(f"network namespace {self.net.netns} or veth {self.net.host_if}")
        self.pids.clear()
        self.init_pid = self.holder_pid = 0
        self.state_path.unlink(missing_ok=True)
        return left


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def _child_of(pid: int, timeout: float = 10.0) -> int:
    """The first child of ``pid`` (unshare's forked init), waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.05)
    raise NotReady(f"real node: the init (child of unshare {pid}) did not start")


def _start_init(node: RealNode, log_dir: Path) -> None:
    argv = [
        "nsenter",
        f"--net={node.net.netns_path}",
        "--",
        "unshare",
        "--pid",
        "--fork",
        "--kill-child=SIGKILL",
        "--mount",
        "--propagation",
        "private",
        "--mount-proc",
        "--",
        sys.executable,
        str(INIT),
    ]
    proc = start("node-init", argv, log_dir=log_dir)
    node.procs["node-init"] = proc
    # nsenter execs unshare in place, so the process started is unshare itself.
    node.holder_pid = proc.pid
    node.init_pid = _child_of(proc.pid)
    node.save()


def _mount_private_paths(node: RealNode) -> None:
    layout = node.layout
    for point in HOST_MOUNT_POINTS:
        if not Path(point).exists():
            Path(point).mkdir(parents=True)
            node.made_dirs.append(point)
    node.save()
    node._must(["mount", "-t", "tmpfs", "-o", "mode=0755", "node-run", "/run"])
    node._must(["mkdir", "-p", "/run/containerd", "/run/netns"])
    node._must(["mount", "--bind", str(layout.var_log), "/var/log"])
    node._must(["mount", "--bind", str(layout.cni_cache_dir), "/var/lib/cni"])


def _write_files(node: RealNode, *, cp_pki: pki_mod.Pki, server: str, sandbox_image: str) -> Path:
    layout = node.layout
    for path in layout.dirs():
        path.mkdir(parents=True, exist_ok=True)
    net = node.net
    kubelet_client = pki_mod.issue(
        cp_pki,
        "kubelet-client",
        common_name=f"system:node:{NODE_NAME}",
        organization="system:nodes",
    )
    kubelet_serving = pki_mod.issue(
        cp_pki,
        "kubelet-serving",
        common_name=NODE_NAME,
        server=True,
        dns=(NODE_NAME,),
        ips=(net.node_ip,),
    )
    proxy_client = pki_mod.issue(cp_pki, "kube-proxy-client", common_name="system:kube-proxy")
    kubelet_kubeconfig = node.root / "kubelet.kubeconfig"
    proxy_kubeconfig = node.root / "kube-proxy.kubeconfig"
    for path, leaf, user in (
        (kubelet_kubeconfig, kubelet_client, f"system:node:{NODE_NAME}"),
        (proxy_kubeconfig, proxy_client, "system:kube-proxy"),
    ):
        doc = kubeconfig(server=server, ca=cp_pki.ca_cert, cert=leaf.cert, key=leaf.key, user=user)
        path.write_text(yaml.safe_dump(doc))
        path.chmod(0o600)
    layout.containerd_config.write_text(
        configs.containerd_config(layout, sandbox_image=sandbox_image)
    )
    (layout.cni_conf_dir / "10-retention-node.conflist").write_text(
        json.dumps(configs.cni_conflist(layout, net), indent=2)
    )
    layout.resolv_conf.write_text("# No upstream resolver: nothing outside this machine answers.\n")
    layout.kubelet_config.write_text(
        configs.to_yaml(
            configs.kubelet_config(
                layout,
                net,
                ca_cert=cp_pki.ca_cert,
                serving=(kubelet_serving.cert, kubelet_serving.key),
                cgroup_root=node.cgroup_root,
            )
        )
    )
    layout.kube_proxy_config.write_text(
        configs.to_yaml(
            configs.kube_proxy_config(net, kubeconfig=proxy_kubeconfig, node_name=NODE_NAME)
        )
    )
    return kubelet_kubeconfig


def _ctr(node: RealNode, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(node.containerd_address), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _containerd_answers(node: RealNode) -> bool:
    return _ctr(node, "version", timeout=5).returncode == 0


def start_real_node(
    *,
    root: Path,
    net: NodeNetwork,
    cp_pki: pki_mod.Pki,
    server: str,
    bin_dir: Path,
    sandbox_image: str,
    preload: list[images.BuiltImage],
    log_dir: Path,
) -> RealNode:
    """Start containerd, the kubelet and kube-proxy in ``net``'s namespace; return the node.

    ``preload`` (the sandbox image among them) is imported before the kubelet
    starts, so no pod ever waits for a pull. Returns once
    the daemons run; the caller waits for the Node to be Ready. On failure
    everything started is stopped again and NotReady is raised.
    """
    node = RealNode(net=net, root=root, cgroup_root=cgroups.name_for(net.slot))
    # A node starts empty: what an earlier one left (images, containers, logs,
    # volumes) belongs to a cluster that is gone.
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    node.save()
    try:
        kubelet_kubeconfig = _write_files(
            node, cp_pki=cp_pki, server=server, sandbox_image=sandbox_image
        )
        cgroups.create(node.cgroup_root)
        _start_init(node, log_dir)
        _mount_private_paths(node)
        layout = node.layout
        containerd = node.start_daemon(
            "containerd", ["containerd", "--config", str(layout.containerd_config)], log_dir=log_dir
        )
        wait_until(
            lambda: _containerd_answers(node), what="containerd", timeout=30, proc=containerd
        )
        images.import_into(preload, address=node.containerd_address)
        node.start_daemon(
            "kubelet",
            [
                str(bin_dir / "kubelet"),
                f"--config={layout.kubelet_config}",
                f"--kubeconfig={kubelet_kubeconfig}",
                f"--root-dir={configs.KUBELET_ROOT}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={net.node_ip}",
                f"--node-labels={LABEL_NODE_KIND}=real",
                "--v=1",
            ],
            log_dir=log_dir,
        )
        node.start_daemon(
            "kube-proxy",
            [str(bin_dir / "kube-proxy"), f"--config={layout.kube_proxy_config}", "--v=1"],
            log_dir=log_dir,
        )
    except BaseException:
        node.stop()
        raise
    return node


def _processes_naming(root: Path) -> list[tuple[int, str]]:
    """(pid, command line) of every live process but this one whose command line names ``root``."""
    found = []
    marker = str(root)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if marker in cmdline:
                found.append((int(proc.name), cmdline.strip()))
    return found


def leftovers(net: NodeNetwork, root: Path) -> list[str]:
    """Whatever a stopped node left on the host: processes, mounts, network, cgroups.

    Empty when the node is gone without a trace. Used by teardown tests and
    to report what ``make cluster-down`` could not remove.
    """
    found = [f"process {pid}: {cmdline[:160]}" for pid, cmdline in _processes_naming(root)]
    marker = str(root)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if marker in line:
                found.append(f"mount: {line}")
    if net.netns_path.exists():
        found.append(f"network namespace {net.netns}")
    if subprocess.run(["ip", "link", "show", net.host_if], capture_output=True).returncode == 0:
        found.append(f"veth {net.host_if}")
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for cidr in (net.cluster_cidr, net.service_cidr):
        if cidr in routes:
            found.append(f"host route to {cidr}")
    found += [
        f"cgroup {hierarchy / cgroups.name_for(net.slot).lstrip('/')}"
        for hierarchy in cgroups.hierarchies()
        if (hierarchy / cgroups.name_for(net.slot).lstrip("/")).exists()
    ]
    return found
