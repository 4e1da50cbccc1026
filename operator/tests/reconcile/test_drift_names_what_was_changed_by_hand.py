"""drift(): the fields a manifest sets that a live object no longer holds, and nothing else."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from retention_operator.builders import api, pgbouncer
from retention_operator.model import RetentionStack
from retention_operator.reconcile.apply import stamped
from retention_operator.reconcile.drift import content_changed, drift, quantity, replacement_patch

Manifest = dict[str, Any]


def _stack() -> RetentionStack:
    return RetentionStack.model_validate(
        {
            "apiVersion": "retention.dev/v1alpha1",
            "kind": "RetentionStack",
            "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {
                "api": {
                    "image": "app:1",
                    "resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}},
                    "env": [{"name": "LOG_LEVEL", "value": "info"}],
                },
                "workers": {},
                "redis": {"external": {"url": "redis://r:6379/0"}},
                "pgbouncer": {
                    "database": {"host": "pg.db.svc", "name": "app", "user": "app_user"},
                    "credentialsSecretRef": {"name": "pg-creds"},
                },
            },
        }
    )


def _stored(manifest: Manifest) -> Manifest:
    """What the API server keeps of an applied manifest: defaults, status, canonical quantities."""
    live = copy.deepcopy(manifest)
    live["metadata"] |= {"uid": "u", "resourceVersion": "42", "generation": 3}
    live["metadata"]["labels"]["team.example/owner"] = "payments"  # another manager's label
    live["status"] = {"replicas": 2, "readyReplicas": 2}
    spec = live.get("spec", {})
    template = spec.get("template", {}).get("spec")
    if template:
        template |= {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always"}
        for container in template["containers"]:
            container |= {"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/t"}
            requests = container.get("resources", {}).get("requests", {})
            if requests.get("cpu") == "0.5":
                requests["cpu"] = "500m"
            if requests.get("memory") == "1024Mi":
                requests["memory"] = "1Gi"
        for volume in template.get("volumes", []):
            if volume.get("emptyDir") == {}:
                volume["emptyDir"] = {}
    return live


@pytest.fixture
def deployment() -> Manifest:
    return stamped(api.build_api_deployment(_stack(), include_replicas=False))


def test_an_untouched_child_shows_no_drift(deployment: Manifest) -> None:
    assert drift(deployment, _stored(deployment)) == []


def test_an_image_changed_by_hand_is_named(deployment: Manifest) -> None:
    live = _stored(deployment)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:6"
    assert drift(deployment, live) == ["spec.template.spec.containers[api].image"]


def test_changed_resources_and_a_removed_env_var_are_named(deployment: Manifest) -> None:
    live = _stored(deployment)
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = "2"
    container["env"] = [e for e in container["env"] if e["name"] != "LOG_LEVEL"]
    assert drift(deployment, live) == [
        "spec.template.spec.containers[api].env[LOG_LEVEL]",
        "spec.template.spec.containers[api].resources.requests.cpu",
    ]


def test_items_another_manager_added_to_a_keyed_list_are_left_alone(deployment: Manifest) -> None:
    live = _stored(deployment)
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "x:1"})
    live["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EXTRA", "value": "1"})
    assert drift(deployment, live) == []


def test_a_label_of_ours_removed_is_named_but_a_foreign_one_is_not(deployment: Manifest) -> None:
    live = _stored(deployment)
    del live["metadata"]["labels"]["app.kubernetes.io/part-of"]
    live["metadata"]["labels"]["team.example/owner"] = "someone-else"
    assert drift(deployment, live) == ["metadata.labels.app.kubernetes.io/part-of"]


def test_a_service_port_and_a_configmap_edit_are_named() -> None:
    service = stamped(api.build_api_service(_stack()))
    live = _stored(service)
    live["spec"]["ports"][0]["port"] = 9999
    live["spec"]["clusterIP"] = "10.0.0.7"
    assert drift(service, live) == ["spec.ports[http].port"]
    config = stamped(pgbouncer.build_pgbouncer_config_map(_stack()))
    live = _stored(config)
    live["data"]["pgbouncer.ini"] += "max_client_conn = 1\n"
    assert drift(config, live) == ["data.pgbouncer.ini"]


def test_an_atomic_list_is_compared_whole() -> None:
    pdb = stamped(pgbouncer.build_pgbouncer_pdb(_stack()))
    live = _stored(pdb)
    live["spec"]["maxUnavailable"] = 0
    assert drift(pdb, live) == ["spec.maxUnavailable"]
    deployment = stamped(pgbouncer.build_pgbouncer_deployment(_stack()))
    live = _stored(deployment)
    live["spec"]["template"]["spec"]["containers"][0]["command"].append("-v")
    assert drift(deployment, live) == ["spec.template.spec.containers[pgbouncer].command"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        ("1Gi", Decimal(2**30)),
        ("1024Mi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        (2, Decimal(2)),
        ("http", None),
        (True, None),
    ],
)
def test_quantities_compare_by_value(text: object, value: Decimal | None) -> None:
    assert quantity(text) == value


def test_a_status_update_is_not_a_content_change(deployment: Manifest) -> None:
    old = _stored(deployment)
    new = copy.deepcopy(old)
    new["status"]["readyReplicas"] = 1
    new["metadata"]["resourceVersion"] = "43"
    assert not content_changed(old, new)
    new["metadata"]["labels"]["x"] = "y"
    assert content_changed(old, new)


def test_a_re_keyed_service_port_gets_its_list_replaced_before_the_apply() -> None:
    service = stamped(api.build_api_service(_stack()))
    assert replacement_patch(service, _stored(service)) is None
    live = _stored(service)
    live["spec"]["ports"][0]["port"] = 9999
    assert replacement_patch(service, live) == {
        "spec": {"ports": [{"$patch": "replace"}, *service["spec"]["ports"]]}
    }


def test_a_re_keyed_container_port_is_replaced_inside_its_container(deployment: Manifest) -> None:
    live = _stored(deployment)
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "http", "containerPort": 1, "protocol": "TCP"}]
    # The drift names the port by its name: it is still there, with another number.
    assert drift(deployment, live) == [
        "spec.template.spec.containers[api].ports[http].containerPort"
    ]
    patch = replacement_patch(deployment, live)
    assert patch is not None
    [replaced] = patch["spec"]["template"]["spec"]["containers"]
    assert replaced["name"] == "api"
    assert replaced["ports"][0] == {"$patch": "replace"}
