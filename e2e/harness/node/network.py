"""The real node's network: a namespace of its own, one veth pair to the host, no way out.

Each real node gets a *slot* (0-15), and every name and range derives from it,
so two local clusters with real nodes can run side by side:

=================  ==========================  ===============================
what               where                       value for slot ``k``
=================  ==========================  ===============================
network namespace  host                        ``rsnode<k>``
veth, host side    host                        ``rsh<k>``, ``10.250.<k>.1/30``
veth, node side    the namespace               ``rsn<k>``, ``10.250.<k>.2/30``
pods               the namespace (CNI bridge)  ``10.<64+k>.0.0/24`` (of ``/16``)
services           kube-proxy in the namespace ``10.<96+k>.0.0/16``
=================  ==========================  ===============================

The namespace has exactly two routes: the veth's /30 and the pods' bridge.
There is no default route, so a packet from a pod to any other address fails
at once with "network unreachable", and the host (which does not forward)
never carries one further. The host reaches pods and Services through two
routes of its own via the node's veth address; those routes go with the veth.

Callers: :mod:`harness.node.realnode`. Everything here needs root.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

SLOTS = 16
NETNS_DIR = Path("/run/netns")


class NetworkError(RuntimeError):
    """The node's network could not be made, or is not isolated as it must be."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class NodeNetwork:
    """Names and addresses of one real node's network (see the module's table)."""

    slot: int

    @property
    def netns(self) -> str:
        return f"rsnode{self.slot}"

    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def host_if(self) -> str:
        return f"rsh{self.slot}"

    @property
    def node_if(self) -> str:
        return f"rsn{self.slot}"

    @property
    def host_ip(self) -> str:
        """The host's end of the veth: where pods reach the API server and host services."""
        return f"10.250.{self.slot}.1"

    @property
    def node_ip(self) -> str:
        """The node's InternalIP: the kubelet's and kube-proxy's address."""
        return f"10.250.{self.slot}.2"

    @property
    def link_cidr(self) -> str:
        return f"10.250.{self.slot}.0/30"

    @property
    def cluster_cidr(self) -> str:
        return f"10.{64 + self.slot}.0.0/16"

    @property
    def pod_cidr(self) -> str:
        """The node's pod range (host-local IPAM hands out addresses from it)."""
        return f"10.{64 + self.slot}.0.0/24"

    @property
    def service_cidr(self) -> str:
        return f"10.{96 + self.slot}.0.0/16"

    @property
    def kubernetes_service_ip(self) -> str:
        """The ``kubernetes`` Service's ClusterIP (the first address of the range)."""
        return f"10.{96 + self.slot}.0.1"

    @property
    def dns_service_ip(self) -> str:
        """CoreDNS's ClusterIP, the kubelet's clusterDNS."""
        return f"10.{96 + self.slot}.0.10"

    def ranges(self) -> list[str]:
        """Every range of this node: the veth link, the pods and the Services."""
        return [self.link_cidr, self.cluster_cidr, self.service_cidr]

    def exists(self) -> bool:
        return self.netns_path.exists() or _link_exists(self.host_if)

    def netns_exec(self, *argv: str) -> list[str]:
        """Return ``argv`` wrapped to run in the node's network namespace only."""
        return ["nsenter", f"--net={self.netns_path}", "--", *argv]


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def _host_routes() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    nets = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("local", "broadcast"):
            continue
        try:
            nets.append(ipaddress.ip_network(dst, strict=False))
        except ValueError:
            continue
    return nets


def _clashes(
    net: NodeNetwork, routes: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str | None:
    for cidr in net.ranges():
        mine = ipaddress.ip_network(cidr)
        for route in routes:
            if mine.overlaps(route):
                return f"{cidr} overlaps the host's route to {route}"
    return None


def allocate() -> NodeNetwork:
    """Create the namespace of the first free slot and return its network.

    ``ip netns add`` fails if the name is taken, so two harnesses starting at
    once never get the same slot. Raises NetworkError when all slots are in use
    or a slot's ranges overlap the host's own routes.
    """
    routes = _host_routes()
    reasons = []
    for slot in range(SLOTS):
        net = NodeNetwork(slot)
        if net.exists():
            continue
        clash = _clashes(net, routes)
        if clash is not None:
            reasons.append(clash)
            continue
        if _ip("netns", "add", net.netns, check=False).returncode == 0:
            return net
    raise NetworkError(
        f"no free real-node slot of {SLOTS} (`make cluster-down` stops old ones): "
        + ("; ".join(reasons) or "all in use")
    )


def wire(net: NodeNetwork) -> None:
    """Make the veth pair, the addresses and the routes of a freshly allocated namespace.

    Inside the namespace: loopback up, the veth's /30, forwarding on (pods go
    through it), bridged traffic through iptables (kube-proxy needs it). On the
    host: routes to the pods and the Services via the node's address.
    Raises NetworkError on the first command that fails.
    """
    _ip("link", "add", net.host_if, "type", "veth", "peer", "name", net.node_if)
    _ip("link", "set", net.node_if, "netns", net.netns)
    _ip("addr", "add", f"{net.host_ip}/30", "dev", net.host_if)
    _ip("link", "set", net.host_if, "up")
    inside = ("-n", net.netns)
    _ip(*inside, "link", "set", "lo", "up")
    _ip(*inside, "addr", "add", f"{net.node_ip}/30", "dev", net.node_if)
    _ip(*inside, "link", "set", net.node_if, "up")
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"):
        done = subprocess.run(
            net.netns_exec("sysctl", "-q", "-w", f"{key}=1"),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise NetworkError(f"sysctl {key}=1 in {net.netns}: {done.stderr.strip()}")
    for cidr in (net.cluster_cidr, net.service_cidr):
        _ip("route", "add", cidr, "via", net.node_ip, "dev", net.host_if)
    check_isolated(net.netns)


def routes_inside(netns: str) -> list[dict[str, object]]:
    """The IPv4 and IPv6 routes of namespace ``netns``, as ``ip -j route`` prints them."""
    found: list[dict[str, object]] = []
    for family in ("-4", "-6"):
        out = _ip("-n", netns, "-j", family, "route", "show", "table", "all").stdout
        found += json.loads(out or "[]")
    return found


def check_isolated(netns: str) -> None:
    """Raise NetworkError if namespace ``netns`` has a default route (a way out)."""
    for route in routes_inside(netns):
        if route.get("dst") == "default" and route.get("type", "unicast") == "unicast":
            raise NetworkError(
                f"network namespace {netns} has a default route ({route}); "
                "the real node must have no route out of this machine"
            )


def destroy(net: NodeNetwork) -> None:
    """Delete the namespace and the veth (its routes go with it); absent parts are fine.

    The caller stops every process in the namespace first, or the namespace
    lives on, unnamed, until they exit.
    """
    if net.netns_path.exists():
        _ip("netns", "del", net.netns, check=False)
    if _link_exists(net.host_if):
        _ip("link", "del", net.host_if, check=False)
