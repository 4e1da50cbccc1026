"""A real PostgreSQL, and PgBouncer in transaction pool mode in front of it.

Both refuse to run as root, and the tests run as root in CI, so as root they
run as the ``postgres`` system user (see :class:`harness.service_base.RunAs`)
with their data and config in a folder that user owns. The application role
authenticates with SCRAM over TCP; the superuser ``postgres`` only over the
server's private unix socket, which the harness uses to provision.
Callers: :mod:`harness.fixtures_services` and the tests under e2e/tests.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from harness.procs import Proc
from harness.service_base import (
    RunAs,
    free_ports,
    postgres_bin_dir,
    require_binary,
    run_checked,
    start_ready,
)

HOST = "127.0.0.1"
SUPERUSER = "postgres"


def _dsn(*, user: str, password: str, host: str, port: int, dbname: str) -> str:
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{dbname}"


def _pg_tool(name: str) -> str:
    return require_binary(name, search=[postgres_bin_dir()])


@dataclass
class PostgresServer:
    """A postgres server with one application role and database.

    ``start()`` initialises the data dir and provisions the role and database
    the first time; later starts reuse them on the same port.
    """

    port: int
    root: Path
    log_dir: Path
    run_as: RunAs
    password: str
    user: str = "retention"
    dbname: str = "retention"
    host: str = HOST
    name: str = "postgres"
    _proc: Proc | None = field(default=None, repr=False)
    _provisioned: bool = field(default=False, repr=False)

    @property
    def dsn(self) -> str:
        return _dsn(
            user=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            dbname=self.dbname,
        )

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def pid(self) -> int | None:
        """Process id (and process group) of the running server; None when stopped."""
        return self._proc.pid if self._proc is not None else None

    def start(self, *, timeout: float = 60.0) -> None:
        """Start postgres (no-op if running), wait for pg_isready, provision once.

        Raises NotReady with the log tail if initdb, startup or provisioning fails.
        """
        if self.running():
            return
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(timeout=timeout)
        self._proc = start_ready(
            self.name,
            self.run_as.argv(self._postgres_argv()),
            log_dir=self.log_dir,
            ready=self.is_ready,
            what=f"postgres on port {self.port}",
            timeout=timeout,
            cwd=self.root,
        )
        if not self._provisioned:
            self._provision()
            self._provisioned = True

    def stop(self) -> None:
        """Stop postgres (fast shutdown on SIGTERM); no-op if stopped."""
        if self._proc is not None:
            self._proc.stop(timeout=20.0)
            self._proc = None

    def cleanup(self) -> None:
        """Stop postgres and remove its data dir."""
        self.stop()
        self.run_as.remove(self.root)

    def is_ready(self) -> bool:
        """Return True if pg_isready says the server accepts TCP connections."""
        done = subprocess.run(
            [_pg_tool("pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "1"],
            check=False,
            timeout=5,
        )
        return done.returncode == 0

    def psql_super(self, sql: str, *, timeout: float = 30.0) -> str:
        """Run ``sql`` as the superuser over the unix socket and return psql's output.

        Raises NotReady with psql's output when it fails.
        """
        argv = [_pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER]
        argv += ["-d", "postgres", "-c", sql]
        return run_checked(argv, what="psql", timeout=timeout, log=self.log_path)

    def _initdb(self, *, timeout: float) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        self.run_as.own(self.socket_dir)
        argv = [_pg_tool("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER]
        argv += ["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"]
        argv += ["--locale=C", "--no-sync", "--no-instructions"]
        run_checked(
            self.run_as.argv(argv), what="initdb", timeout=timeout, log=self.log_path, cwd=self.root
        )

    def _postgres_argv(self) -> list[str]:
        # Durability settings are off: the data lives as long as one test session.
        settings = {
            "listen_addresses": self.host,
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "logging_collector": "off",
        }
        argv = [_pg_tool("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _provision(self) -> None:
        # The password is hex from secrets.token_hex, so it needs no SQL quoting.
        self.psql_super(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self.psql_super(f"CREATE DATABASE {self.dbname} OWNER {self.user}")


@dataclass
class PgBouncerServer:
    """PgBouncer in front of a :class:`PostgresServer`, same role and database.

    ``restart()`` stops it and starts it again on the same port, which is what
    a client sees when PgBouncer is restarted under load.
    """

    port: int
    root: Path
    log_dir: Path
    run_as: RunAs
    backend: PostgresServer
    pool_mode: str = "transaction"
    default_pool_size: int = 10
    host: str = HOST
    name: str = "pgbouncer"
    _proc: Proc | None = field(default=None, repr=False)

    @property
    def user(self) -> str:
        return self.backend.user

    @property
    def password(self) -> str:
        return self.backend.password

    @property
    def dbname(self) -> str:
        return self.backend.dbname

    @property
    def dsn(self) -> str:
        return _dsn(
            user=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            dbname=self.dbname,
        )

    @property
    def admin_dsn(self) -> str:
        """DSN of PgBouncer's admin console (``SHOW POOLS`` and friends)."""
        return _dsn(
            user=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            dbname="pgbouncer",
        )

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def config_path(self) -> Path:
        return self.root / "pgbouncer.ini"

    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def start(self, *, timeout: float = 20.0) -> None:
        """Write the config, start PgBouncer (no-op if running), wait for a query through it.

        Raises NotReady with the log tail if it exits or answers no query in time.
        """
        if self.running():
            return
        self._write_config()
        self._proc = start_ready(
            self.name,
            self.run_as.argv(
                [require_binary("pgbouncer", search=[Path("/usr/sbin")]), str(self.config_path)]
            ),
            log_dir=self.log_dir,
            ready=self.answers_query,
            what=f"pgbouncer on port {self.port}",
            timeout=timeout,
            cwd=self.root,
        )

    def stop(self) -> None:
        """Stop PgBouncer at once (SIGTERM: immediate shutdown); no-op if stopped."""
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def restart(self, *, timeout: float = 20.0) -> None:
        """Stop and start again on the same port; raise NotReady if it does not come back."""
        self.stop()
        self.start(timeout=timeout)

    def cleanup(self) -> None:
        """Stop PgBouncer and remove its config dir."""
        self.stop()
        self.run_as.remove(self.root)

    def answers_query(self) -> bool:
        """Return True if ``SELECT 1`` through PgBouncer succeeds."""
        done = subprocess.run(
            [_pg_tool("psql"), "-X", "-q", "-At", "-d", self.dsn, "-c", "SELECT 1"],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
        return done.returncode == 0 and done.stdout.strip() == "1"

    def _write_config(self) -> None:
        userlist = self.root / "userlist.txt"
        # PgBouncer can answer SCRAM and log in to postgres with a plain-text entry.
        userlist.write_text(f'"{self.user}" "{self.password}"\n')
        userlist.chmod(0o600)
        self.config_path.write_text(self._ini(userlist))
        self.run_as.own(userlist, self.config_path)

    def _ini(self, userlist: Path) -> str:
        backend = self.backend
        return (
            "[databases]\n"
            f"{backend.dbname} = host={backend.host} port={backend.port} dbname={backend.dbname}\n"
            "\n[pgbouncer]\n"
            f"listen_addr = {self.host}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {userlist}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.default_pool_size}\n"
            "max_client_conn = 200\n"
            f"admin_users = {self.user}\n"
            f"stats_users = {self.user}\n"
            # psql and psycopg send it; PgBouncer would refuse the login otherwise.
            "ignore_startup_parameters = extra_float_digits\n"
            "server_login_retry = 1\n"
        )


def start_postgres(
    *, base_dir: Path, user: str = "retention", dbname: str = "retention"
) -> PostgresServer:
    """Start PostgreSQL with role ``user`` (random password) owning database ``dbname``.

    Logs go to ``base_dir/postgres.log``. Raises MissingBinary if PostgreSQL is
    not installed, NotReady (with the log tail) if it does not come up.
    """
    run_as = RunAs.for_server()
    (port,) = free_ports(1)
    server = PostgresServer(
        port=port,
        root=run_as.private_dir(base=base_dir, name="postgres"),
        log_dir=base_dir,
        run_as=run_as,
        password=secrets.token_hex(12),
        user=user,
        dbname=dbname,
    )
    try:
        server.start()
    except Exception:
        server.cleanup()
        raise
    return server


def start_pgbouncer(
    backend: PostgresServer, *, base_dir: Path, pool_mode: str = "transaction"
) -> PgBouncerServer:
    """Start PgBouncer in front of ``backend`` with the same role and database.

    Raises MissingBinary if pgbouncer is not installed, NotReady (with the log
    tail) if no query gets through it in time.
    """
    run_as = backend.run_as
    (port,) = free_ports(1)
    bouncer = PgBouncerServer(
        port=port,
        root=run_as.private_dir(base=base_dir, name="pgbouncer"),
        log_dir=base_dir,
        run_as=run_as,
        backend=backend,
        pool_mode=pool_mode,
    )
    try:
        bouncer.start()
    except Exception:
        bouncer.cleanup()
        raise
    return bouncer
