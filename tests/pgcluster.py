"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl in a temp folder.

Debian keeps the server programs off PATH (/usr/lib/postgresql/<version>/bin), and the server
refuses to run as root, so as root the cluster runs as the ``postgres`` system user (created
by Debian's package; created here if missing). It listens on a free loopback port with
password (SCRAM) authentication only, and is stopped and removed at the end of the session.
scripts/test installs the package when it is missing: these tests are never skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

SUPERUSER = "watchd"
PASSWORD = "pg-test-password"


def server_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found; install Debian's postgresql package "
            "(scripts/test does this on a fresh machine)"
        )
    return candidates[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> list[str]:
    """The prefix that runs a command as a non-root user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
        )
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Cluster:
    """A running throwaway cluster."""

    data: Path
    port: int
    prefix: list[str]
    host: str = "127.0.0.1"
    #: False for throwaway test data (faster); True where durability is measured (bench).
    fsync: bool = False

    def url(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        """A libpq URL without the password (tests pass it as PGPASSWORD would)."""
        return f"postgresql://{user}@{self.host}:{self.port}/{dbname}"

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit superuser connection to the ``postgres`` database."""
        return psycopg.connect(self.url(), password=PASSWORD, autocommit=True)

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on this cluster as its owner."""
        subprocess.run(
            [*self.prefix, server_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start (or start again after a stop) on the same port."""
        opts = f"-p {self.port} -k {self.data} -c listen_addresses={self.host}"
        if not self.fsync:
            opts += " -c fsync=off"
        self.pg_ctl("-l", str(self.data / "server.log"), "-o", opts, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop: ``fast`` (clean) or ``immediate`` (as after a crash: recovery on start)."""
        self.pg_ctl("-m", mode, "stop")


@contextlib.contextmanager
def running_cluster(*, fsync: bool = False) -> Iterator[Cluster]:
    """initdb + start in a fresh temp folder; stop and remove it afterwards."""
    prefix = _run_as()
    root = Path(tempfile.mkdtemp(prefix="watchd-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *prefix,
            server_bin("initdb"),
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
    )
    cluster = Cluster(data=data, port=_free_port(), prefix=prefix, fsync=fsync)
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the whole session."""
    with running_cluster() as cluster:
        yield cluster


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def pg_database(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database on the session's cluster; its URL (no password)."""
    name = f"t{os.getpid()}_{next(_counter)}"
    with pg_cluster.admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_cluster.url(name)
    finally:
        with pg_cluster.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
