"""A throwaway PostgreSQL server for tests, from the machine's PostgreSQL 15 binaries.

    with PostgresServer() as pg:          # or the session fixture `postgres_server`
        env = {**os.environ, **pg.env()}  # POSTGRES_HOST, _PORT, _USER, _PASSWORD, _DB, _SCHEMA
        pg.create_database("mine")        # a database of one's own, if the test wants one

The server lives in a fresh temporary folder (data, unix socket, log), listens on 127.0.0.1
only, on a free port, and trusts nobody over TCP without the password (md5/SCRAM): the
superuser `postgres` logs in with `password`. It runs with fsync off (a test's data does not
need to survive a crash). `stop()` (or leaving the `with` block) ends it by its own pid and
removes the folder; nothing here touches a server started by anyone else.

initdb and postgres refuse to run as root: as root they run as the OS user `postgres`
(`runuser -u postgres --`), in a folder owned by that user.

When the binaries (or, as root, the `postgres` user or `runuser`) are missing,
`PostgresUnavailable` says what is missing; the fixture turns it into a skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DEFAULT_BINDIRS = ("/usr/lib/postgresql/15/bin",)
SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=50 "
    # room for dbt's joins and sorts: the machines have 24 GiB
    "-c shared_buffers=512MB -c work_mem=128MB -c maintenance_work_mem=256MB"
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


def find_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres: PostgreSQL 15's Debian folder, else
    `pg_config --bindir`, else wherever initdb is on PATH."""
    candidates = [Path(d) for d in DEFAULT_BINDIRS]
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(Path(out))
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
        f"{', '.join(str(c) for c in candidates)}: install Debian's postgresql-15"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL server of its own; see the module's docstring."""

    host = "127.0.0.1"
    user = "postgres"
    password = "pg-test-secret"

    def __init__(self, dbname: str = "account_engagement", bindir: Path | None = None) -> None:
        self.dbname = dbname
        self.bindir = bindir
        self.port = 0
        self.pid: int | None = None
        self.root: Path | None = None

    # ------------------------------------------------------------------ layout
    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socketdir(self) -> Path:
        return self.root / "socket"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def env(self) -> dict[str, str]:
        """The POSTGRES_* settings (docs/configuration.md) that reach this server."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DB": self.dbname,
            "POSTGRES_SCHEMA": "main",
        }

    def connect(self, dbname: str | None = None, **kwargs):
        """A psycopg2 connection (the `postgres` extra) over TCP with the password."""
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user,
                                password=self.password, dbname=dbname or self.dbname, **kwargs)

    # ------------------------------------------------------------------ processes
    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser")
        if not runuser:
            raise PostgresUnavailable("running as root, and runuser (util-linux) is missing")
        return [runuser, "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = [*self._as_server_user(), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                check=False, cwd=self.root, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError, TypeError):
            return "\nserver log:\n" + self.logfile.read_text(errors="replace")[-2000:]
        return ""

    def start(self) -> PostgresServer:
        self.bindir = self.bindir or find_bindir()
        owner = None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no OS user `postgres` to run the server as"
                ) from None
            self._as_server_user()  # runuser present?
        self.root = Path(tempfile.mkdtemp(prefix="pg-test-"))
        try:
            self.socketdir.mkdir()
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            pwfile.chmod(0o600)
            if owner is not None:
                for path in (self.root, self.socketdir, pwfile):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._run(
                str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=md5", "-E", "UTF8",
                "--no-locale", "--no-sync", "--no-instructions",
            )
            pwfile.unlink()
            for attempt in range(5):  # the free port may be taken meanwhile: pick another
                self.port = free_port()
                try:
                    self._run(
                        str(self.bindir / "pg_ctl"), "-w", "-t", "60", "-D", str(self.datadir),
                        "-l", str(self.logfile), "-o",
                        f"{SERVER_OPTIONS} -p {self.port} -k {self.socketdir}", "start",
                    )
                    break
                except RuntimeError:
                    if attempt == 4:
                        raise
            self.pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
            self._run(str(self.bindir / "createdb"), "-h", str(self.socketdir),
                      "-p", str(self.port), "-U", self.user, self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str) -> str:
        """A fresh, empty database `name` (an existing one of that name is dropped first)."""
        psql = [str(self.bindir / "psql"), "-h", str(self.socketdir), "-p", str(self.port),
                "-U", self.user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
        self._run(*psql, f'drop database if exists "{name}" with (force)')
        self._run(*psql, f'create database "{name}"')
        return name

    def stop(self) -> None:
        """Ends the server (pg_ctl's fast shutdown, else SIGTERM and SIGKILL to its pid) and
        removes its folder."""
        try:
            if self.pid is not None:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run(str(self.bindir / "pg_ctl"), "stop", "-m", "fast", "-w",
                              "-t", "30", "-D", str(self.datadir), timeout=60)
                self._end(self.pid)
                self.pid = None
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    @staticmethod
    def _end(pid: int) -> None:
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            deadline = time.monotonic() + wait
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.05)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
