"""``make gitops-table``: record every case on a fresh control plane, then write the doc.

Starts a control plane, PostgreSQL, Redis and the operator in a scratch
directory, brings one stack into each case (:func:`harness.gitops_cases.record`)
in namespace ``shop``, writes the stable fixtures and rewrites the table of
docs/gitops.md from them (:mod:`harness.gitops_table`), and stops everything
it started, on failure too.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kubernetes import config

from harness import gitops, gitops_cases, gitops_table
from harness.controlplane import start_control_plane
from harness.operator import OperatorProcess
from harness.pki import create_server_tls
from harness.services import start_postgres, start_redis

NAMESPACE = "shop"
CRD = gitops.REPO / "crds" / "retention.dev_retentionstacks.yaml"


def _say(message: str) -> None:
    print(f"gitops-table: {message}", file=sys.stderr, flush=True)


def generate(*, check: bool = False) -> int:
    """Record the cases and write fixtures and table; with ``check``, only compare.

    Returns 0, or 1 when ``check`` finds the fixtures or the table out of date.
    """
    with tempfile.TemporaryDirectory(prefix="gitops-table-") as scratch:
        base = Path(scratch)
        cp = start_control_plane(base / "cluster")
        postgres = redis = None
        operator = OperatorProcess(kubeconfig=cp.kubeconfig, log_dir=base / "operator")
        try:
            cp.kubectl("apply", "--server-side", "-f", str(CRD))
            cp.wait_established("retentionstacks.retention.dev")
            # TLS as the test session's PostgreSQL has it: a stack's default
            # sslmode towards a database outside the cluster is require.
            tls = create_server_tls(base / "postgres-tls", hosts=["127.0.0.1"], ca_name="db-ca")
            postgres = start_postgres(base_dir=base / "postgres", tls=tls)
            redis = start_redis(base_dir=base / "redis")
            operator.start()
            cp.kubectl("create", "namespace", NAMESPACE)
            api = config.new_client_from_config(config_file=str(cp.kubeconfig))  # type: ignore[no-untyped-call]
            try:
                live = gitops_cases.record(
                    cp, api, operator, NAMESPACE, postgres=postgres, redis=redis
                )
            finally:
                api.close()
            fixtures = {
                case: gitops_cases.stable(
                    stack, namespace=NAMESPACE, postgres=postgres, redis=redis
                )
                for case, stack in live.items()
            }
        finally:
            operator.stop()
            if redis is not None:
                redis.stop()
            if postgres is not None:
                postgres.cleanup()
            cp.stop()
    table = gitops_table.render(fixtures)
    if gitops_table.render(live) != table:
        _say("the stable fixtures read differently from the live stacks")
        return 1
    if check:
        current = table == gitops_table.doc_table()
        _say("docs/gitops.md is current" if current else "docs/gitops.md is out of date")
        return 0 if current else 1
    gitops_table.write_fixtures(fixtures)
    gitops_table.write_doc_table(table)
    _say(f"wrote {len(fixtures)} fixtures and the table of docs/gitops.md:\n{table}")
    return 0
