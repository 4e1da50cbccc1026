"""The real node's configuration files say what these machines need (no servers run).

cgroup v1 without systemd, root without CAP_SYS_RESOURCE, a network namespace
with no default route: each test names the setting that breaks the node when
it is wrong, and what breaks.
"""

from __future__ import annotations

import ipaddress
import itertools
import tomllib
from pathlib import Path

from harness.node import addons, configs
from harness.node.network import SLOTS, NodeNetwork

NET = NodeNetwork(3)
LAYOUT = configs.NodeLayout(Path("/srv/run/node"))


def test_containerd_clamps_oom_score_and_uses_cgroupfs_and_the_local_pause_image() -> None:
    config = tomllib.loads(configs.containerd_config(LAYOUT, sandbox_image="localhost/p:1"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    # Without the clamp every sandbox fails: root here may not lower oom_score_adj.
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/p:1"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"] == str(LAYOUT.cni_conf_dir)
    # Its state stays under the node's folder, never in /var/lib/containerd.
    assert config["root"].startswith(str(LAYOUT.root))
    assert config["state"].startswith(str(LAYOUT.root))


def test_kubelet_runs_on_cgroup_v1_without_systemd_under_its_own_cgroup_root() -> None:
    config = configs.kubelet_config(
        LAYOUT, NET, ca_cert=Path("/ca.crt"), serving=(Path("/k.crt"), Path("/k.key")),
        cgroup_root="/retention-node-3",
    )  # fmt: skip
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["failCgroupV1"] is False
    assert config["cgroupRoot"] == "/retention-node-3"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["address"] == NET.node_ip
    assert config["clusterDNS"] == [NET.dns_service_ip]
    assert "nodefs.available" not in config["evictionHard"]


def test_pods_services_and_dns_sit_in_the_slot_ranges() -> None:
    services = ipaddress.ip_network(NET.service_cidr)
    assert ipaddress.ip_address(NET.dns_service_ip) in services
    assert ipaddress.ip_address(NET.kubernetes_service_ip) in services
    subnet = configs.cni_conflist(LAYOUT, NET)["plugins"][0]["ipam"]["ranges"][0][0]["subnet"]
    assert ipaddress.ip_network(subnet).subnet_of(ipaddress.ip_network(NET.cluster_cidr))
    proxy = configs.kube_proxy_config(NET, kubeconfig=Path("/kc"), node_name="real-node")
    assert proxy["clusterCIDR"] == NET.cluster_cidr
    dns = next(m for m in addons.coredns_manifests(NET, image="c") if m["kind"] == "Service")
    assert dns["spec"]["clusterIP"] == NET.dns_service_ip


def test_no_two_slots_share_an_address_range() -> None:
    ranges = [
        (slot, ipaddress.ip_network(cidr))
        for slot in range(SLOTS)
        for cidr in NodeNetwork(slot).ranges()
    ]
    for (a, one), (b, other) in itertools.combinations(ranges, 2):
        if a != b:
            assert not one.overlaps(other), (a, one, b, other)


def test_coredns_forwards_nothing_outside_the_cluster() -> None:
    assert "forward" not in addons.corefile()
    assert "kubernetes cluster.local" in addons.corefile()
