"""The PgBouncer image as the operator's Deployment runs it: its start script, then PgBouncer.

The container's command (``builders/pgbouncer.RUN_SCRIPT``, ``/bin/sh`` and
``sed`` of the image) writes the auth file from the mounted credentials into the
memory volume and starts PgBouncer as uid 65532 on a read-only root with the
builder's pgbouncer.ini; a changed password file is taken up by a reload. A real
PostgreSQL (Debian's, through the harness) runs in the pod's network namespace at
the address the stack names, so a client there is pooled through to it with the
password of the auth file, and refused by PgBouncer with another. The image's
stop signal is SIGINT, 1.18's draining shutdown, which the script passes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.images import BuiltImage
from harness.postgres_servers import PostgresServer
from harness.service_base import RunAs, postgres_bin_dir
from retention_operator.builders import pgbouncer as pgbouncer_builder
from retention_operator.model import RetentionStack

pytestmark = [pytest.mark.node, pytest.mark.timeout(120)]

PASSWORD = 'se"cret pass'

_CONNECT = """
import asyncio, sys
import asyncpg

async def main() -> None:
    try:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=6432, user="app_user", password=sys.argv[1],
            database="app", ssl=False, statement_cache_size=0, timeout=15,
        )
    except Exception as exc:
        print(type(exc).__name__, exc)
    else:
        print("connected as", await conn.fetchval("SELECT current_user"))
        await conn.close()

asyncio.run(main())
"""


def _connect_in_netns(pid: int, password: str) -> str:
    """Connect to PgBouncer from inside the container's network namespace; return the outcome."""
    out = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", _CONNECT, password],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.stdout.strip() + out.stderr.strip()


@dataclass
class _PostgresInPod(PostgresServer):
    """The harness's PostgreSQL, started inside a container's network namespace."""

    netns: str = ""

    def is_ready(self) -> bool:
        pg_isready = str(postgres_bin_dir() / "pg_isready")
        argv = [pg_isready, "-q", "-h", self.host, "-p", str(self.port), "-t", "1"]
        done = subprocess.run(["nsenter", f"--net={self.netns}", *argv], check=False, timeout=5)
        return done.returncode == 0


@pytest.fixture
def postgres_in_pod(tmp_path: Path) -> Iterator[Callable[[int, RetentionStack], PostgresServer]]:
    """``start(pid, stack)``: PostgreSQL where ``stack`` says, in the netns of process ``pid``."""
    started: list[PostgresServer] = []

    def start(pid: int, stack: RetentionStack) -> PostgresServer:
        db = stack.spec.pgbouncer.database
        netns = f"/proc/{pid}/ns/net"
        base = RunAs.for_server()
        run_as = RunAs(base.uid, base.gid, ("nsenter", f"--net={netns}", *base.prefix))
        server = _PostgresInPod(
            port=db.port,
            root=base.private_dir(base=tmp_path, name="postgres"),
            log_dir=tmp_path,
            run_as=run_as,
            password=PASSWORD,
            user=db.user,
            dbname=db.name,
            host=db.host,
            netns=netns,
        )
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.cleanup()


def _stop_signal(image: BuiltImage) -> str:
    with tarfile.open(image.archive) as tar:

        def blob(digest: str) -> dict[str, object]:
            member = tar.extractfile("blobs/sha256/" + digest.removeprefix("sha256:"))
            assert member is not None
            loaded: dict[str, object] = json.load(member)
            return loaded

        manifest = blob(image.digest)
        config = blob(manifest["config"]["digest"])  # type: ignore[index]
    return str(config["config"].get("StopSignal"))  # type: ignore[attr-defined]


def test_pgbouncer_pools_as_65532_with_the_rendered_config_and_auth_file(
    containerd,
    built_images: dict[str, BuiltImage],
    stack: RetentionStack,
    postgres_in_pod: Callable[[int, RetentionStack], PostgresServer],
    tmp_path: Path,
) -> None:
    image = built_images["pgbouncer"]
    # The PostgreSQL here serves no TLS; an IP host would default to sslmode=require.
    body = stack.model_dump(by_alias=True, exclude_none=True)
    body["spec"]["pgbouncer"]["tls"] = {"sslmode": "disable"}
    stack = RetentionStack.model_validate(body)
    deployment = pgbouncer_builder.build_pgbouncer_deployment(stack)
    main = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "initContainers" not in deployment["spec"]["template"]["spec"]
    config, auth, credentials = tmp_path / "config", tmp_path / "auth", tmp_path / "credentials"
    for folder in (config, auth, credentials):
        folder.mkdir()
    os.chown(auth, 65532, 65532)  # an emptyDir with fsGroup 65532
    ini = pgbouncer_builder.build_pgbouncer_config_map(stack)["data"]
    for key, text in ini.items():
        (config / key).write_text(text)
        (config / key).chmod(0o644)
    # The Secret volume: mode 0440 (defaultMode 288), group 65532 by fsGroup.
    password_file = credentials / pgbouncer_builder.PASSWORD_FILE
    password_file.write_text(PASSWORD)
    os.chown(password_file, 0, 65532)
    password_file.chmod(0o440)
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    env = {e["name"]: e["value"] for e in main["env"]}

    bouncer = containerd.run(
        image,
        "pgbouncer",
        args=main["command"],
        env=env,
        mounts=[
            (config, mounts["config"], True),
            (credentials, mounts["credentials"], True),
            (auth, mounts["auth"], False),
        ],
    )
    assert bouncer.uid() == 65532
    containerd.wait_for_output(bouncer, "listening on 0.0.0.0:6432")
    userlist = auth / pgbouncer_builder.AUTH_FILE
    assert userlist.read_text() == '"app_user" "se""cret pass"\n'
    assert userlist.stat().st_uid == 65532 and userlist.stat().st_mode & 0o077 == 0

    postgres_in_pod(bouncer.pid, stack)
    assert _connect_in_netns(bouncer.pid, PASSWORD) == "connected as app_user"
    refused = _connect_in_netns(bouncer.pid, "wrong")
    assert "SASL authentication failed" in refused, refused

    assert _stop_signal(image) == "SIGINT"
    assert containerd.stop(bouncer, "SIGINT", timeout=20) == 0, bouncer.output()
