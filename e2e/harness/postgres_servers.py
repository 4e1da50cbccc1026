"""A real PostgreSQL, and PgBouncer in transaction pool mode in front of it.

Both refuse to run as root, and the tests run as root in CI, so as root they
run as the ``postgres`` system user (see :class:`harness.service_base.RunAs`)
with their data and config in a folder that user owns. The application role
authenticates with SCRAM over TCP; the superuser ``postgres`` only over the
server's private unix socket, which the harness uses to provision.
A server may serve TLS with a certificate a test made (:func:`harness.pki.create_server_tls`),
and a primary may get streaming replicas (:func:`start_replica`, made with
``pg_basebackup``), as a hosted PostgreSQL with read replicas would have.
Callers: :mod:`harness.fixtures_services` and the tests under e2e/tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from harness.pki import ServerTls
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
    tls: ServerTls | None = None
    """When set, the server also accepts TLS with this certificate (plain TCP still works)."""
    # More addresses to listen on, and the client ranges allowed to log in
    # from them (the real node's pods reach the host through its veth).
    listen: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
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
        """Stop postgres with a fast shutdown (SIGINT: open sessions are ended); no-op if stopped.

        SIGTERM would be a smart shutdown, which waits for every client, and
        PgBouncer keeps its server connections open.
        """
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.popen.wait(timeout=15)
            self._proc.stop(timeout=5.0)
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

    def psql_super(self, sql: str, *, timeout: float = 30.0, dbname: str = "postgres") -> str:
        """Run ``sql`` as the superuser in ``dbname`` over the unix socket; return psql's output.

        Raises NotReady with psql's output when it fails.
        """
        argv = [_pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER]
        argv += ["-d", dbname, "-c", sql]
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
        if self.clients:
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                for cidr in self.clients:
                    hba.write(f"host all all {cidr} scram-sha-256\n")

    def _postgres_argv(self) -> list[str]:
        # Durability settings are off: the data lives as long as one test session.
        settings = {
            "listen_addresses": ",".join((self.host, *self.listen)),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "logging_collector": "off",
            # Counts statements per server at once (the table statistics are
            # flushed only after a second or more): where reads ran is told by it.
            "shared_preload_libraries": "pg_stat_statements",
        }
        if self.tls is not None:
            settings |= self._tls_settings(self.tls)
        argv = [_pg_tool("postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _tls_settings(self, tls: ServerTls) -> dict[str, str]:
        # postgres refuses a key file that others can read, and it runs as
        # another user as root: it gets its own copies.
        folder = self.root / "tls"
        folder.mkdir(exist_ok=True)
        cert, key = folder / "server.crt", folder / "server.key"
        shutil.copyfile(tls.cert, cert)
        shutil.copyfile(tls.key, key)
        key.chmod(0o600)
        self.run_as.own(folder, cert, key)
        return {"ssl": "on", "ssl_cert_file": str(cert), "ssl_key_file": str(key)}

    def statement_calls(self, fragment: str) -> int:
        """Times this server ran statements whose text contains ``fragment`` (pg_stat_statements).

        Each server counts its own, so on a primary and its replica the figures
        say where a query ran.
        """
        # The fragment is a constant of the calling test, not input.
        query = "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
        out = self.psql_super_db(f"{query} WHERE strpos(query, $${fragment}$$) > 0")
        return int(out or 0)

    def psql_super_db(self, sql: str, *, timeout: float = 30.0) -> str:
        """Like :meth:`psql_super`, in the application database instead of ``postgres``."""
        argv = [_pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER]
        argv += ["-d", self.dbname, "-c", sql]
        return run_checked(argv, what="psql", timeout=timeout, log=self.log_path)

    def _provision(self) -> None:
        # The password is hex from secrets.token_hex, so it needs no SQL quoting.
        self.psql_super(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self.psql_super(f"CREATE DATABASE {self.dbname} OWNER {self.user}")
        self.psql_super_db("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


@dataclass
class ReplicaServer(PostgresServer):
    """A hot standby of ``primary``, cloned with ``pg_basebackup`` and streaming from it.

    It shares the primary's roles, database and password; it answers reads and
    refuses writes. ``pause_replay``/``resume_replay`` stop and restart the
    replay of WAL (``pg_wal_replay_pause()``), so that its data falls behind
    while it keeps answering.
    """

    primary: PostgresServer | None = None

    def _initdb(self, *, timeout: float) -> None:
        primary = self.primary
        assert primary is not None, "a replica needs its primary"
        self.socket_dir.mkdir(exist_ok=True)
        self.run_as.own(self.socket_dir)
        # Over the primary's unix socket, where the superuser may replicate
        # without a password; -R writes standby.signal and primary_conninfo.
        argv = [_pg_tool("pg_basebackup"), "-h", str(primary.socket_dir), "-p", str(primary.port)]
        # A fast checkpoint: the default (spread) waits for the next scheduled one.
        argv += ["-U", SUPERUSER, "-D", str(self.data_dir), "-R", "-X", "stream", "--no-sync"]
        argv += ["--checkpoint=fast"]
        run_checked(
            self.run_as.argv(argv),
            what="pg_basebackup",
            timeout=timeout,
            log=self.log_path,
            cwd=self.root,
        )

    def _provision(self) -> None:
        # Roles and databases come from the primary through replication.
        return

    def pause_replay(self) -> None:
        """Stop replaying WAL: reads keep answering, with data as of now."""
        self.psql_super("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        """Replay WAL again; the replica catches up with the primary."""
        self.psql_super("SELECT pg_wal_replay_resume()")

    def replayed_up_to_primary(self) -> bool:
        """Return True if this replica has replayed everything the primary has written so far."""
        assert self.primary is not None
        lsn = self.primary.psql_super("SELECT pg_current_wal_lsn()").strip()
        behind = self.psql_super(f"SELECT pg_last_wal_replay_lsn() < '{lsn}'::pg_lsn").strip()
        return behind == "f"


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
    rendered_ini: str | None = None
    """pgbouncer.ini as the operator's builders render it; the harness sets only
    the listener, the auth file and the admin users (plus ``overrides``)."""
    overrides: dict[str, str] = field(default_factory=dict)
    binary: str | None = None
    """A pgbouncer executable other than Debian's (for example a newer build)."""
    run_script: str | None = None
    """The operator's start script for the PgBouncer container; when set PgBouncer runs
    under it, as in the pod: auth file from a password file, reload on a change."""
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
        binary = self.binary or require_binary("pgbouncer", search=[Path("/usr/sbin")])
        argv, env = [binary, str(self.config_path)], None
        if self.run_script is not None:
            argv = ["/bin/sh", "-c", self.run_script]
            env = {
                "PGBOUNCER_BIN": binary,
                "PGBOUNCER_CONFIG": str(self.config_path),
                "PGBOUNCER_PASSWORD_FILE": str(self.password_path),
                "PGBOUNCER_AUTH_FILE": str(self.root / "userlist.txt"),
                "PGBOUNCER_USER": self.user,
                # Rendered as for the pod's exporter sidecar (harness.pgbouncer_exporter).
                "PGBOUNCER_PASSFILE": str(self.passfile_path),
            }
        self._proc = start_ready(
            self.name,
            self.run_as.argv(argv),
            log_dir=self.log_dir,
            ready=self.answers_query,
            what=f"pgbouncer on port {self.port}",
            timeout=timeout,
            cwd=self.root,
            env=env,
        )

    def stop(self) -> None:
        """Stop PgBouncer at once (SIGTERM: immediate shutdown); no-op if stopped."""
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    @property
    def password_path(self) -> Path:
        """The password file the start script renders the auth file from (the Secret's key)."""
        return self.root / "password"

    @property
    def passfile_path(self) -> Path:
        """The libpq passfile the start script renders for the exporter (mode 0600)."""
        return self.root / "pgpass"

    def reload(self, rendered_ini: str | None = None) -> None:
        """Write the config again (optionally a new rendering) and have PgBouncer re-read it.

        Under :attr:`run_script` the script notices the change and sends SIGHUP,
        as in the pod; otherwise the harness sends it. No client is dropped.
        """
        if rendered_ini is not None:
            self.rendered_ini = rendered_ini
        self._write_config()
        assert self._proc is not None, "reload needs a running PgBouncer"
        if self.run_script is None:
            self._proc.signal(signal.SIGHUP)

    def set_password(self, password: str) -> None:
        """Write a new password file, as the kubelet does when the Secret changes."""
        tmp = self.root / "password.new"
        tmp.write_text(password)
        self.run_as.own(tmp)
        tmp.replace(self.password_path)

    def restart(self, *, timeout: float = 20.0) -> None:
        """Stop and start again on the same port; raise NotReady if it does not come back."""
        self.stop()
        self.start(timeout=timeout)

    def freeze(self) -> None:
        """SIGSTOP PgBouncer's process group: it answers nothing and closes nothing, as a pod
        killed at once or a partitioned node looks to its clients (no FIN, no RST). The
        kernel still completes new TCP handshakes. A test that freezes it must :meth:`thaw`."""
        assert self._proc is not None, "freeze needs a running PgBouncer"
        os.killpg(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped; no-op if PgBouncer is not running."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

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
        if self.run_script is None:
            # PgBouncer can answer SCRAM and log in to postgres with a plain-text entry.
            userlist.write_text(f'"{self.user}" "{self.password}"\n')
            userlist.chmod(0o600)
            self.run_as.own(userlist)
        elif not self.password_path.exists():
            self.set_password(self.password)
        # Written whole and renamed, as the kubelet swaps a ConfigMap's files.
        tmp = self.root / "pgbouncer.ini.new"
        tmp.write_text(self._ini(userlist))
        self.run_as.own(tmp)
        tmp.replace(self.config_path)

    def _ini(self, userlist: Path) -> str:
        if self.rendered_ini is not None:
            return with_settings(
                self.rendered_ini,
                {
                    "listen_addr": self.host,
                    "listen_port": str(self.port),
                    "auth_file": str(userlist),
                    "admin_users": self.user,
                    "stats_users": self.user,
                    "server_login_retry": "1",
                    **self.overrides,
                },
            )
        backend = self.backend
        return with_settings(self._debian_ini(backend, userlist), self.overrides)

    def _debian_ini(self, backend: PostgresServer, userlist: Path) -> str:
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


def with_settings(ini: str, settings: dict[str, str]) -> str:
    """Return ``ini`` with each ``key = value`` of ``settings`` set.

    A key already present is replaced in place; the others are appended at the
    end, which is the [pgbouncer] section in what the builders render.
    """
    out = ini if ini.endswith("\n") else ini + "\n"
    for key, value in settings.items():
        pattern = re.compile(rf"^{re.escape(key)}\s*=.*$", re.MULTILINE)
        line = f"{key} = {value}"
        if pattern.search(out):
            out = pattern.sub(line.replace("\\", "\\\\"), out)
        else:
            out += line + "\n"
    return out


def start_postgres(
    *,
    base_dir: Path,
    user: str = "retention",
    dbname: str = "retention",
    tls: ServerTls | None = None,
    listen: tuple[str, ...] = (),
    clients: tuple[str, ...] = (),
) -> PostgresServer:
    """Start PostgreSQL with role ``user`` (random password) owning database ``dbname``.

    It listens on 127.0.0.1 and on ``listen``; ``user`` may log in from
    127.0.0.1 and from the ``clients`` ranges. Logs go to
    ``base_dir/postgres.log``. Raises MissingBinary if PostgreSQL is not
    installed, NotReady (with the log tail) if it does not come up.
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
        tls=tls,
        listen=listen,
        clients=clients,
    )
    try:
        server.start()
    except Exception:
        server.cleanup()
        raise
    return server


def start_replica(
    primary: PostgresServer, *, base_dir: Path, name: str = "replica"
) -> ReplicaServer:
    """Clone ``primary`` with pg_basebackup and start it as a streaming hot standby.

    Same role, password and database as the primary (and the same TLS, if any).
    Raises NotReady with the log tail if it does not come up.
    """
    (port,) = free_ports(1)
    replica = ReplicaServer(
        port=port,
        root=primary.run_as.private_dir(base=base_dir, name=name),
        log_dir=base_dir,
        run_as=primary.run_as,
        password=primary.password,
        user=primary.user,
        dbname=primary.dbname,
        name=name,
        tls=primary.tls,
        primary=primary,
    )
    try:
        replica.start()
    except Exception:
        replica.cleanup()
        raise
    return replica


def start_pgbouncer(
    backend: PostgresServer,
    *,
    base_dir: Path,
    pool_mode: str = "transaction",
    rendered_ini: str | None = None,
    overrides: dict[str, str] | None = None,
    binary: str | None = None,
    run_script: str | None = None,
    name: str = "pgbouncer",
) -> PgBouncerServer:
    """Start PgBouncer in front of ``backend`` with the same role and database.

    Raises MissingBinary if pgbouncer is not installed, NotReady (with the log
    tail) if no query gets through it in time.
    """
    run_as = backend.run_as
    (port,) = free_ports(1)
    bouncer = PgBouncerServer(
        port=port,
        root=run_as.private_dir(base=base_dir, name=name),
        log_dir=base_dir,
        run_as=run_as,
        backend=backend,
        pool_mode=pool_mode,
        rendered_ini=rendered_ini,
        overrides=dict(overrides or {}),
        binary=binary,
        run_script=run_script,
        name=name,
    )
    try:
        bouncer.start()
    except Exception:
        bouncer.cleanup()
        raise
    return bouncer
