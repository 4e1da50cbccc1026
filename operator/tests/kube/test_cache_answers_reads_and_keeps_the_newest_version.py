"""The child cache: label selectors, newest version wins, listeners hear real changes only."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from retention_operator.kube.cache import ChildCache, matches
from retention_operator.kube.connection import Connection

Manifest = dict[str, Any]


def _deployment(
    name: str, version: int, *, stack: str = "s1", image: str = "a:1", namespace: str = "ns"
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(version),
            "labels": {"retention.dev/stack": stack},
            "managedFields": [{"manager": "retention-operator"}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
    }


@pytest.fixture
def cache() -> ChildCache:
    connection = Connection(host="https://kube.test", ssl_context=ssl.create_default_context())
    return ChildCache(connection, label_selector="retention.dev/stack")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("retention.dev/stack", True),
        ("retention.dev/stack=s1", True),
        ("retention.dev/stack==s1,app=x", False),
        ("missing", False),
        ("retention.dev/stack!=s1", None),
        ("app in (x, y)", None),
    ],
)
def test_equality_selectors_match_and_others_are_left_to_the_server(
    selector: str, expected: bool | None
) -> None:
    assert matches({"retention.dev/stack": "s1"}, selector) is expected


@pytest.mark.parametrize("selector", ["", "retention.dev/stack!=s1"])
def test_a_cache_refuses_a_selector_it_could_not_match_its_own_objects_by(selector: str) -> None:
    connection = Connection(host="https://kube.test", ssl_context=ssl.create_default_context())
    with pytest.raises(ValueError, match="is not an equality selector"):
        ChildCache(connection, label_selector=selector)


def test_an_older_version_never_replaces_a_newer_one(cache: ChildCache) -> None:
    heard: list[tuple[str, Manifest | None, Manifest | None]] = []
    cache.subscribe(lambda kind, old, new: heard.append((kind, old, new)))
    cache.put(_deployment("s1-api", 10, image="new:2"))
    cache._upsert(_deployment("s1-api", 9, image="old:1"))
    cache._upsert(_deployment("s1-api", 10, image="new:2"))
    stored = cache.get("Deployment", "ns", "s1-api")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "new:2"
    assert "managedFields" not in stored["metadata"]
    # The operator's own write and the watch event that echoes it are not news.
    assert heard == []


def test_a_late_delete_does_not_remove_a_recreated_object(cache: ChildCache) -> None:
    cache.put(_deployment("s1-api", 12))
    cache._remove(_deployment("s1-api", 10))
    assert cache.get("Deployment", "ns", "s1-api") is not None
    cache._remove(_deployment("s1-api", 13))
    assert cache.get("Deployment", "ns", "s1-api") is None
    assert cache.children_of("ns", "s1") == []


def test_listeners_hear_changes_and_deletions(cache: ChildCache) -> None:
    heard: list[tuple[str | None, str | None]] = []

    def version(obj: Manifest | None) -> str | None:
        return None if obj is None else str(obj["metadata"]["resourceVersion"])

    cache.subscribe(lambda kind, old, new: heard.append((version(old), version(new))))
    cache._upsert(_deployment("s1-api", 1))
    cache._upsert(_deployment("s1-api", 2))
    cache._remove(_deployment("s1-api", 3))
    assert heard == [(None, "1"), ("1", "2"), ("2", None)]


def test_select_filters_by_namespace_and_label(cache: ChildCache) -> None:
    cache._upsert(_deployment("s1-api", 1))
    cache._upsert(_deployment("s2-api", 1, stack="s2"))
    names = {d["metadata"]["name"] for d in cache.select("Deployment", "ns") or []}
    assert names == {"s1-api", "s2-api"}
    only = cache.select("Deployment", "ns", label_selector="retention.dev/stack=s2") or []
    assert [d["metadata"]["name"] for d in only] == ["s2-api"]
    assert cache.select("Deployment", "other") == []
    assert [c["metadata"]["name"] for c in cache.children_of("ns", "s2")] == ["s2-api"]


def test_select_in_one_namespace_sees_none_of_the_others_and_all_sees_every_one(
    cache: ChildCache,
) -> None:
    cache._upsert(_deployment("s1-api", 1))
    cache._upsert(_deployment("s1-api", 2, namespace="team-b"))
    cache._upsert(_deployment("s2-api", 3, stack="s2", namespace="team-b"))

    def names(found: list[Manifest] | None) -> set[tuple[str, str]]:
        return {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in found or []}

    assert names(cache.select("Deployment", "ns")) == {("ns", "s1-api")}
    # The cache's own selector asks nothing more of what it holds.
    own = cache.select("Deployment", "team-b", label_selector="retention.dev/stack")
    assert names(own) == {("team-b", "s1-api"), ("team-b", "s2-api")}
    assert names(cache.select("Deployment", None, label_selector="retention.dev/stack=s1")) == {
        ("ns", "s1-api"),
        ("team-b", "s1-api"),
    }
    assert len(cache) == 3
    cache._remove(_deployment("s1-api", 4))
    assert cache.select("Deployment", "ns") == []
    assert cache.get("Deployment", "ns", "s1-api") is None
    assert cache.get("Deployment", "team-b", "s1-api") is not None
    assert len(cache) == 2
