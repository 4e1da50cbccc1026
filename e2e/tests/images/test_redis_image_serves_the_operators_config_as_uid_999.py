"""The Redis image as the operator's StatefulSet runs it.

The builder's own command, redis.conf and auth fragment, mounted where the
pod mounts them (read-only), /data a writable volume owned by 999, the root
filesystem read-only: redis-server runs as uid 999 in cluster mode, needs the
password, writes its cluster state and append-only file to /data only, and
shuts down cleanly on SIGTERM (the kubelet's stop signal; the image sets none,
like the public one).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.images import BuiltImage
from retention_operator.builders import redis as redis_builder
from retention_operator.model import RetentionStack

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]

PASSWORD = 'p"ss\\word with spaces'


def _volumes(tmp_path: Path, stack: RetentionStack) -> dict[str, Path]:
    """Write the ConfigMap and Secret files as the kubelet would, and an empty data volume."""
    config = tmp_path / "config"
    auth = tmp_path / "auth"
    data = tmp_path / "data"
    for path in (config, auth, data):
        path.mkdir()
    config_map = redis_builder.build_redis_config_map(stack)
    for key, text in config_map["data"].items():
        (config / key).write_text(text)
        (config / key).chmod(0o644)
    secret = redis_builder.build_redis_auth_secret(stack, password=PASSWORD)
    for key, text in secret["stringData"].items():
        (auth / key).write_text(text)
        os.chown(auth / key, 0, 999)  # defaultMode 0400 plus fsGroup 999, as the kubelet does
        (auth / key).chmod(0o440)
    os.chown(data, 999, 999)
    return {"config": config, "auth": auth, "data": data}


def test_redis_answers_ping_as_uid_999_with_the_rendered_config(
    containerd, built_images: dict[str, BuiltImage], stack: RetentionStack, tmp_path: Path
) -> None:
    container_spec = redis_builder.build_redis_statefulset(stack)["spec"]["template"]["spec"][
        "containers"
    ][0]
    mounts = {m["name"]: m["mountPath"] for m in container_spec["volumeMounts"]}
    volumes = _volumes(tmp_path, stack)
    # The kubelet expands $(POD_NAME) from the downward API.
    command = [arg.replace("$(POD_NAME)", "demo-redis-0") for arg in container_spec["command"]]
    redis = containerd.run(
        built_images["redis"],
        "redis",
        args=command,
        mounts=[
            (volumes[name], mounts[name], name != "data") for name in ("config", "auth", "data")
        ],
    )
    assert redis.uid() == 999
    containerd.wait_for_output(redis, "Ready to accept connections")

    def cli(*args: str) -> str:
        probe = containerd.exec(redis, ["redis-cli", "--no-auth-warning", *args])
        assert probe.returncode == 0, probe.stdout + probe.stderr
        return probe.stdout.strip()

    assert cli("ping").startswith("NOAUTH")
    assert cli("-a", PASSWORD, "ping") == "PONG"
    assert "cluster_enabled:1" in cli("-a", PASSWORD, "info", "cluster")
    assert cli("-a", PASSWORD, "config", "get", "dir").splitlines()[-1] == "/data"
    assert (volumes["data"] / "nodes.conf").is_file()
    assert containerd.stop(redis, "SIGTERM", timeout=20) == 0
    assert "ready to exit, bye bye" in redis.output()
