"""A private PostgreSQL server on a loopback port, for the tests and the demo.

The server's files (data directory, unix socket, log) live in one work
directory; as root the server runs as the ``postgres`` system user, because
``initdb`` and ``postgres`` refuse to run as root.

Example::

    with PrivatePostgres() as pg:
        url = pg.create_database("ioc")   # postgresql://postgres@127.0.0.1:PORT/ioc
        db = Database(url)
        ...
        pg.stop()     # a fast shutdown; start() brings the same data back on the same port
        pg.start()
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from common.errors import IocEdgeError
from ioc.broker import free_port

SERVER_USER = "postgres"
"""The system user the server runs as when we are root (Debian's postgresql package creates it)."""


class PostgresError(IocEdgeError, RuntimeError):
    """PostgreSQL's programs are missing or the server would not start."""


def find_bindir() -> Path:
    """The directory of ``initdb`` and ``postgres``: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path and Path(on_path).resolve().with_name("postgres").exists():
        return Path(on_path).resolve().parent
    # Debian keeps them off PATH, one directory per major version.
    found = [
        p.parent
        for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if p.parent.joinpath("postgres").exists()
    ]
    if not found:
        raise PostgresError(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
            "`apt-get install postgresql` (./dev setup does it)"
        )
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


class PrivatePostgres:
    """A PostgreSQL server of its own on ``127.0.0.1:port``, trusting local clients, superuser ``postgres``.

    ``workdir`` holds the data directory, the unix socket and ``postgres.log``;
    without one, a fresh temporary directory is used and removed by
    :meth:`close` (as root, a directory the ``postgres`` user can reach is
    needed: root's private temporary directories are not). ``fsync=False``
    (the default) trades durability across a machine crash for speed, as
    tests want.

    Example::

        with PrivatePostgres() as pg:
            print(pg.url("postgres"))
    """

    def __init__(
        self, workdir: str | Path | None = None, port: int | None = None, *, fsync: bool = False
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="ioc-pg-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.fsync = fsync
        self.bindir = find_bindir()
        self._user = self._server_user()
        self._proc: subprocess.Popen | None = None

    @staticmethod
    def _server_user() -> pwd.struct_passwd | None:
        """Whom the server runs as: ourselves, or ``postgres`` when we are root."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresError(
                f"running as root and there is no {SERVER_USER!r} system user for the server "
                "(initdb refuses root): `apt-get install postgresql` creates it, or run as another user"
            ) from None

    def _as_server(self) -> dict:
        """subprocess keywords that run a program as the server's user."""
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        if self._user is not None:
            os.chown(self.workdir, self._user.pw_uid, self._user.pw_gid)
        # C locale: text sorts by bytes, as SQLite does, whatever the machine's locale.
        command = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
        result = subprocess.run(
            [*command, "-E", "UTF8", "--no-locale", "--no-sync"],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            **self._as_server(),
        )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed in {self.data} (as {self._user.pw_name if self._user else 'this user'}, who "
                "must be able to reach and write it; without a workdir a temporary one is used): "
                f"{result.stderr.strip()[-500:]}"
            )

    def start(self, timeout: float = 30.0) -> None:
        """Create the data directory on first use, then start the server and wait until it accepts clients."""
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        settings = {
            "listen_addresses": self.host,
            "port": self.port,
            "unix_socket_directories": self.workdir,
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "shared_buffers": "64MB",
            "max_connections": 100,
        }
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data)]
                + [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: a Ctrl-C in the terminal must not stop the database before the receivers.
                start_new_session=True,
                **self._as_server(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise PostgresError(
                    f"postgres exited at start; its log {self.log_path} ends: {self._log_tail()}"
                )
            if self._accepting():
                return
            time.sleep(0.05)
        self.stop()
        raise PostgresError(
            f"postgres did not accept connections on {self.host}:{self.port} within {timeout} s; "
            f"its log {self.log_path} ends: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-500:].strip() if self.log_path.exists() else ""

    def _accepting(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.url("postgres"), connect_timeout=1).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected, the data is kept); killed if it hangs."""
        if self._proc is None:
            return
        # SIGQUIT is PostgreSQL's immediate shutdown: it still takes the server's children with it.
        for sig in (signal.SIGINT, signal.SIGQUIT):
            if self._proc.poll() is None:
                self._proc.send_signal(sig)
            try:
                self._proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url(self, dbname: str) -> str:
        """The URL of database ``dbname`` on this server, as :class:`ioc.db.Database` takes it."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def _admin(self, statement: str, dbname: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL(statement).format(sql.Identifier(dbname)))

    def create_database(self, dbname: str) -> str:
        """Create an empty database; its URL."""
        self._admin("CREATE DATABASE {}", dbname)
        return self.url(dbname)

    def drop_database(self, dbname: str) -> None:
        """Drop a database, disconnecting whoever is still connected to it."""
        self._admin("DROP DATABASE IF EXISTS {} WITH (FORCE)", dbname)

    def close(self) -> None:
        """Stop the server; remove the work directory if it was a temporary one of ours."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
