"""What a real node needs beside the kubelet: cluster DNS and a volume provisioner.

CoreDNS (built from its Go module) answers ``cluster.local`` on the Service
address the kubelet hands pods as their nameserver; it forwards nothing,
since nothing outside this machine may be asked. local-path-provisioner
(rancher's, built from its Go module) turns each PersistentVolumeClaim into
a folder on the node, under the node's own folder, when its pod is
scheduled; its StorageClass is the cluster's default. Both run as pods on
the real node, from images the project builds (:mod:`harness.images`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness import images
from harness.node.network import NodeNetwork
from harness.procs import wait_until

if TYPE_CHECKING:
    from harness.controlplane import ControlPlane

Manifest = dict[str, Any]
DNS_NAMESPACE = "kube-system"
STORAGE_NAMESPACE = "local-path-storage"
STORAGE_CLASS = "local-path"
DNS_PORT = 1053


# The images the node itself needs, by their names in harness.images.
NODE_IMAGE_NAMES = ("pause", "coredns", "local-path-provisioner", "base")


@dataclass(frozen=True)
class NodeImages:
    """Image references the node's add-ons run, and the archives that carry them."""

    sandbox: str
    coredns: str
    local_path: str
    helper: str
    built: list[images.BuiltImage]


def _restricted_container() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def corefile() -> str:
    """CoreDNS's configuration: the cluster zone, health, readiness and metrics; no forwarder."""
    return (
        f".:{DNS_PORT} {{\n"
        "    errors\n"
        "    health {\n        lameduck 5s\n    }\n"
        "    ready\n"
        "    kubernetes cluster.local in-addr.arpa ip6.arpa {\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "        ttl 30\n"
        "    }\n"
        "    prometheus :9153\n"
        "    cache 30\n"
        "    reload\n"
        "    loadbalance\n"
        "}\n"
    )


def coredns_manifests(net: NodeNetwork, *, image: str) -> list[Manifest]:
    """CoreDNS as Kubernetes' own add-on deploys it, on an unprivileged port behind the Service."""
    labels = {"k8s-app": "kube-dns"}
    meta = {"name": "coredns", "namespace": DNS_NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", **meta}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta,
            "data": {"Corefile": corefile()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {**meta, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",
                        "nodeSelector": {"retention.dev/node-kind": "real"},
                        "containers": [
                            {
                                "name": "coredns",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                                    {
                                        "name": "dns-tcp",
                                        "containerPort": DNS_PORT,
                                        "protocol": "TCP",
                                    },
                                    {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                                ],
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "32Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "periodSeconds": 10,
                                },
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "securityContext": _restricted_container(),
                                "volumeMounts": [
                                    {
                                        "name": "config",
                                        "mountPath": "/etc/coredns",
                                        "readOnly": True,
                                    }
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {**meta, "name": "kube-dns", "labels": labels},
            "spec": {
                "clusterIP": net.dns_service_ip,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": DNS_PORT, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": DNS_PORT, "protocol": "TCP"},
                    {"name": "metrics", "port": 9153, "targetPort": 9153, "protocol": "TCP"},
                ],
            },
        },
    ]


def _helper_pod(image: str) -> str:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "priorityClassName": "system-node-critical",
            "tolerations": [
                {
                    "key": "node.kubernetes.io/disk-pressure",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
            "containers": [
                {"name": "helper-pod", "image": image, "imagePullPolicy": "IfNotPresent"}
            ],
        },
    }
    return yaml.safe_dump(pod, sort_keys=False)


def local_path_manifests(*, image: str, helper_image: str, volumes: Path) -> list[Manifest]:
    """local-path-provisioner as its own deploy/local-path-storage.yaml has it (v0.0.30).

    The node's volumes go to ``volumes`` (under the node's folder, so they go
    with it); the StorageClass is the default one.
    """
    ns = STORAGE_NAMESPACE
    sa = "local-path-provisioner-service-account"
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "name": "local-path-provisioner-role"}
    subject = {"kind": "ServiceAccount", "name": sa, "namespace": ns}
    config = {
        "nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(volumes)]}]
    }
    labels = {"app": "local-path-provisioner"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "local-path-provisioner-role", "namespace": ns},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "local-path-provisioner-role"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": [
                        "nodes",
                        "persistentvolumeclaims",
                        "configmaps",
                        "pods",
                        "pods/log",
                    ],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["persistentvolumes"],
                    "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                {
                    "apiGroups": ["storage.k8s.io"],
                    "resources": ["storageclasses"],
                    "verbs": ["get", "list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "local-path-provisioner-bind", "namespace": ns},
            "roleRef": {**role_ref, "kind": "Role"},
            "subjects": [subject],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "local-path-provisioner-bind"},
            "roleRef": {**role_ref, "kind": "ClusterRole"},
            "subjects": [subject],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "local-path-config", "namespace": ns},
            "data": {
                "config.json": json.dumps(config, indent=2),
                "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                "helperPod.yaml": _helper_pod(helper_image),
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "local-path-provisioner", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": sa,
                        "nodeSelector": {"retention.dev/node-kind": "real"},
                        "containers": [
                            {
                                "name": "local-path-provisioner",
                                "image": image,
                                "imagePullPolicy": "IfNotPresent",
                                "command": [
                                    "local-path-provisioner",
                                    "start",
                                    "--config",
                                    "/etc/config/config.json",
                                ],
                                "env": [
                                    {
                                        "name": "POD_NAMESPACE",
                                        "valueFrom": {
                                            "fieldRef": {"fieldPath": "metadata.namespace"}
                                        },
                                    },
                                    {"name": "CONFIG_MOUNT_PATH", "value": "/etc/config/"},
                                ],
                                "securityContext": _restricted_container(),
                                "volumeMounts": [
                                    {"name": "config-volume", "mountPath": "/etc/config/"}
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "config-volume", "configMap": {"name": "local-path-config"}}
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        },
    ]


def _ready(cp: ControlPlane, namespace: str, deployment: str) -> bool:
    out = cp.kubectl(
        "get",
        "deployment",
        deployment,
        "-n",
        namespace,
        "-o",
        "jsonpath={.status.readyReplicas}",
        check=False,
    )
    return out.strip() not in ("", "0")


def install(cp: ControlPlane, *, net: NodeNetwork, images: NodeImages, volumes: Path) -> None:
    """Apply CoreDNS and local-path-provisioner and wait until both are ready.

    Raises NotReady (with the pods' state) if either does not become ready.
    """
    volumes.mkdir(parents=True, exist_ok=True)
    items = coredns_manifests(net, image=images.coredns) + local_path_manifests(
        image=images.local_path, helper_image=images.helper, volumes=volumes
    )
    path = cp.run_dir / "node-addons.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    cp.kubectl("apply", "--server-side", "-f", str(path))
    for namespace, name in (
        (DNS_NAMESPACE, "coredns"),
        (STORAGE_NAMESPACE, "local-path-provisioner"),
    ):
        wait_until(
            functools.partial(_ready, cp, namespace, name),
            what=f"{namespace}/{name} ready",
            timeout=120,
        )


def node_images() -> NodeImages:
    """Build (or find cached) the node's own images; see :mod:`harness.images`."""
    built = images.build(list(NODE_IMAGE_NAMES))
    return NodeImages(
        sandbox=built["pause"].ref,
        coredns=built["coredns"].ref,
        local_path=built["local-path-provisioner"].ref,
        helper=built["base"].ref,
        built=list(built.values()),
    )
