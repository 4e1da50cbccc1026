"""Settings come from the environment; a bad value is refused naming the variable."""

from __future__ import annotations

import pytest

from retention_operator.settings import from_env


def test_defaults_watch_the_whole_cluster_and_scale() -> None:
    settings = from_env({})
    assert settings.namespaces == ()
    assert settings.autoscaler_enabled
    assert settings.tick_seconds == 5.0
    assert settings.peering_name is None


def test_namespaces_are_a_comma_list() -> None:
    assert from_env({"RETENTION_WATCH_NAMESPACES": "a, b,,c"}).namespaces == ("a", "b", "c")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RETENTION_METRICS_PORT": "http"}, "RETENTION_METRICS_PORT"),
        ({"RETENTION_AUTOSCALER_TICK_SECONDS": "0"}, "RETENTION_AUTOSCALER_TICK_SECONDS"),
        ({"RETENTION_AUTOSCALER_ENABLED": "maybe"}, "RETENTION_AUTOSCALER_ENABLED"),
        ({"RETENTION_LOG_FORMAT": "xml"}, "RETENTION_LOG_FORMAT"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        from_env(env)


def test_each_statefulset_pod_gets_its_own_peering_priority() -> None:
    base = {"RETENTION_PEERING_PRIORITY": "100", "RETENTION_PEERING_PRIORITY_FROM_POD_NAME": "true"}
    priorities = {
        from_env({**base, "RETENTION_POD_NAME": f"retention-operator-{i}"}).peering_priority
        for i in range(3)
    }
    assert priorities == {100, 99, 98}


def test_priority_from_pod_name_needs_an_ordinal() -> None:
    env = {"RETENTION_PEERING_PRIORITY_FROM_POD_NAME": "true", "RETENTION_POD_NAME": "op-abc"}
    with pytest.raises(ValueError, match="RETENTION_POD_NAME"):
        from_env(env)
