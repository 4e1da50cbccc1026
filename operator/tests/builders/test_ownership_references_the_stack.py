from __future__ import annotations

import pytest

from retention_operator.builders.ownership import owner_reference, set_owner_reference
from retention_operator.model import StackMeta


def test_owner_reference_from_kopf_meta() -> None:
    ref = owner_reference({"name": "demo", "namespace": "ns", "uid": "u-1", "labels": {}})
    assert ref == {
        "apiVersion": "retention.dev/v1alpha1",
        "kind": "RetentionStack",
        "name": "demo",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_owner_reference_from_parsed_meta() -> None:
    ref = owner_reference(StackMeta(name="demo", namespace="ns", uid="u-1"))
    assert ref["uid"] == "u-1"


def test_owner_reference_needs_a_uid() -> None:
    with pytest.raises(ValueError, match="uid"):
        owner_reference({"name": "demo"})


def test_set_owner_reference_replaces_its_own_and_keeps_others() -> None:
    owner = owner_reference({"name": "demo", "uid": "u-1"})
    manifest = {
        "metadata": {"name": "x", "ownerReferences": [{"uid": "other"}, {"uid": "u-1", "x": 1}]}
    }
    out = set_owner_reference(manifest, owner)
    assert out["metadata"]["ownerReferences"] == [{"uid": "other"}, owner]
    assert manifest["metadata"]["ownerReferences"][1] == {"uid": "u-1", "x": 1}, "input untouched"
    assert set_owner_reference({}, owner)["metadata"]["ownerReferences"] == [owner]
