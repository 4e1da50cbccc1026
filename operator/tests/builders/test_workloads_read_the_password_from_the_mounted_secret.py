"""The API and the workers get the credentials Secret as a file too: rotation needs no restart."""

from __future__ import annotations

import retention_contract as contract
from retention_operator.builders import api, workers
from retention_operator.model import RetentionStack


def test_api_and_workers_mount_the_password_and_name_the_file(stack: RetentionStack) -> None:
    for deployment in (api.build_api_deployment(stack), workers.build_workers_deployment(stack)):
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["database-password"]["secret"] == {
            "secretName": "pg-creds",
            "items": [{"key": "password", "path": "password"}],
            "defaultMode": 0o440,
        }
        (container,) = pod["containers"]
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["database-password"]["mountPath"] == "/var/run/retention/database"
        assert mounts["database-password"]["readOnly"] is True
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[contract.ENV_DATABASE_PASSWORD_FILE] == "/var/run/retention/database/password"
