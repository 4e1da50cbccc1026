"""Configuration files of the real node's daemons, as pure functions of its layout.

containerd (CRI plugin, runc with cgroupfs, overlayfs, the project's pause
image), the CNI bridge with host-local IPAM, the kubelet and kube-proxy. What
each setting is for is said beside it; the reasons come from what these
machines are (cgroup v1, no systemd, root without CAP_SYS_RESOURCE, a
network namespace with no default route). Callers: :mod:`harness.node.realnode`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.node.network import NodeNetwork

# containerd's socket and state live in the node's private /run (a tmpfs of
# its mount namespace); the host reaches the socket through /proc/<init>/root.
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
# The kubelet's root (pod volumes, its sockets) is in that /run too: its unix
# sockets need a path under 108 bytes, which a run folder need not give, and
# none of it outlives the node.
KUBELET_ROOT = "/run/kubelet"
CNI_BIN_DIR = "/usr/lib/cni"
CNI_NETWORK = "retention-node"
CLUSTER_DOMAIN = "cluster.local"
KUBELET_PORT = 10250


@dataclass(frozen=True)
class NodeLayout:
    """Where one real node keeps its files: everything under ``root``."""

    root: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd" / "state"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd" / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def cni_cache_dir(self) -> Path:
        """Bound over /var/lib/cni in the node's mount namespace (libcni's cache)."""
        return self.root / "cni" / "cache"

    @property
    def var_log(self) -> Path:
        """Bound over /var/log in the node's mount namespace (/var/log/pods lives there)."""
        return self.root / "var-log"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet-config.yaml"

    @property
    def kube_proxy_config(self) -> Path:
        return self.root / "kube-proxy-config.yaml"

    @property
    def resolv_conf(self) -> Path:
        return self.root / "resolv.conf"

    @property
    def volumes(self) -> Path:
        """Where local-path-provisioner makes the node's volumes."""
        return self.root / "volumes"

    def dirs(self) -> list[Path]:
        return [
            self.containerd_root,
            self.containerd_state,
            self.cni_conf_dir,
            self.cni_ipam_dir,
            self.cni_cache_dir,
            self.var_log,
            self.volumes,
        ]


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _toml(tables: dict[str, dict[str, object]]) -> str:
    lines = []
    for table, values in tables.items():
        if table:
            lines.append(f"\n[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines).lstrip() + "\n"


def containerd_config(layout: NodeLayout, *, sandbox_image: str) -> str:
    """Return containerd's config.toml (version 2) for the node."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runc = f"{cri}.containerd.runtimes.runc"
    return _toml(
        {
            "": {
                "version": 2,
                "root": str(layout.containerd_root),
                "state": str(layout.containerd_state),
                # Snapshotters and plugins these machines cannot use only log errors.
                "disabled_plugins": [
                    "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing",
                ],
            },
            "grpc": {"address": CONTAINERD_SOCKET},
            "ttrpc": {"address": CONTAINERD_SOCKET + ".ttrpc"},
            cri: {
                # Built by the project (images/pause) and imported before the kubelet starts.
                "sandbox_image": str(sandbox_image),
                # Root here lacks CAP_SYS_RESOURCE: asking runc for the kubelet's
                # oom_score_adj of -998 fails every sandbox ("can't get final
                # child's PID from pipe: EOF"); clamp it to what root may set.
                "restrict_oom_score_adj": True,
                "enable_selinux": False,
                "stream_server_address": "127.0.0.1",
            },
            f"{cri}.containerd": {
                "snapshotter": "overlayfs",
                "default_runtime_name": "runc",
            },
            runc: {"runtime_type": "io.containerd.runc.v2"},
            # No systemd on these machines: cgroupfs, as the kubelet's cgroupDriver.
            f"{runc}.options": {"SystemdCgroup": False},
            f"{cri}.cni": {
                "bin_dir": CNI_BIN_DIR,
                "conf_dir": str(layout.cni_conf_dir),
                "max_conf_num": 1,
            },
            'plugins."io.containerd.internal.v1.opt"': {"path": str(layout.root / "opt")},
        }
    )


def cni_conflist(layout: NodeLayout, net: NodeNetwork) -> dict[str, Any]:
    """Return the CNI network: a bridge with host-local IPAM, and portmap.

    The bridge is the pods' gateway; no masquerade, so the host's services see
    pod addresses (the host routes the pod range back through the veth). Pods
    get no default route, only routes to the node's own ranges: a connection
    to any other address fails in the pod itself, at once, with "network
    unreachable" (a default route would send it on, only for the node to
    answer late: the kernel rate-limits the ICMP errors it sends back).
    """
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.cni_ipam_dir),
                    "ranges": [[{"subnet": net.pod_cidr}]],
                    "routes": [{"dst": cidr} for cidr in net.ranges()],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    layout: NodeLayout,
    net: NodeNetwork,
    *,
    ca_cert: Path,
    serving: tuple[Path, Path],
    cgroup_root: str,
) -> dict[str, Any]:
    """Return the KubeletConfiguration of the real node."""
    cert, key = serving
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # The API server calls the kubelet (logs, exec) with a client
        # certificate of the local CA; everything else asks the API server.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "address": net.node_ip,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(cert),
        "tlsPrivateKeyFile": str(key),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        # cgroup v1 and no systemd (see docs/architecture.md for what that costs).
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        # Pods go under a hierarchy of this node's own, so two nodes never share one.
        "cgroupRoot": cgroup_root,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "podCIDR": net.pod_cidr,
        "clusterDNS": [net.dns_service_ip],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods with dnsPolicy Default get no upstream resolver: nothing outside
        # this machine can be asked anyway.
        "resolvConf": str(layout.resolv_conf),
        # cAdvisor finds no filesystem stats for this machine's root device, so
        # disk-based eviction cannot work; evict on memory only, deliberately.
        "evictionHard": {"memory.available": "200Mi"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "maxPods": 110,
        # Graceful node shutdown needs systemd's inhibitor locks.
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        "staticPodPath": "",
        "nodeStatusUpdateFrequency": "5s",
        "logging": {"format": "text"},
    }


def kube_proxy_config(net: NodeNetwork, *, kubeconfig: Path, node_name: str) -> dict[str, Any]:
    """Return the KubeProxyConfiguration: iptables mode inside the node's namespace."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "clusterCIDR": net.cluster_cidr,
        "hostnameOverride": node_name,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{net.node_ip}/32"],
        # A network namespace's conntrack table size is the host's to set:
        # leave the sysctls alone instead of failing on them.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)
