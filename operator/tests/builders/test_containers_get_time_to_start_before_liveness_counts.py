"""Every container with a liveness probe gets a startup probe: minutes to start on a busy node.

A liveness probe alone killed API containers still importing their
libraries on a loaded node (seen on the real node: two cores, eleven
containers starting at once), and the restart dropped requests.
"""

from __future__ import annotations

from retention_operator.builders import api, pgbouncer, redis, workers
from retention_operator.model import RetentionStack


def test_each_probed_container_may_take_a_minute_or_more_to_start(stack: RetentionStack) -> None:
    templates = [
        api.build_api_deployment(stack),
        workers.build_workers_deployment(stack),
        redis.build_redis_statefulset(stack),
        pgbouncer.build_pgbouncer_deployment(stack),
    ]
    for manifest in templates:
        for container in manifest["spec"]["template"]["spec"]["containers"]:
            if "livenessProbe" not in container:
                continue
            startup = container["startupProbe"]
            budget = startup["periodSeconds"] * startup["failureThreshold"]
            assert budget >= 60, (manifest["metadata"]["name"], startup)
            # It watches the same port the liveness probe does.
            assert startup["tcpSocket"]["port"] == container["livenessProbe"]["tcpSocket"]["port"]
