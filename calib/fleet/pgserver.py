"""A throwaway PostgreSQL server on a Unix socket, for the tests and ``bench/bench_results.py``.

Runs the system's ``initdb`` and ``pg_ctl`` (Debian's ``postgresql``
package, which ``.ci/run`` installs) in a temporary folder: no TCP port, so
parallel runs do not collide, and nothing outside the folder is touched.
PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or the server would not start (the message says why)."""


def _bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("no initdb found (install the postgresql package: apt-get install postgresql)")


@dataclass
class TempPostgres:
    """A running server; :attr:`url` reaches its ``postgres`` database as superuser ``calib``."""

    folder: Path
    socket_dir: Path
    bindir: Path
    user: str | None

    @property
    def url(self) -> str:
        """Return the SQLAlchemy URL of the ``postgres`` database on this server."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """SQLAlchemy URL of database ``name`` on this server."""
        return f"postgresql+psycopg://calib@/{name}?host={self.socket_dir}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg

        with psycopg.connect(host=str(self.socket_dir), user="calib", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        _run(self, [str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"],
             check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(server: TempPostgres, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if server.user:
        cmd = ["runuser", "-u", server.user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise PostgresUnavailable(f"{' '.join(cmd[-3:])} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return proc


def start_postgres(durable: bool = False) -> TempPostgres:
    """Initialise and start a server in a new temporary folder.

    ``durable=False`` turns off fsync (tests); ``True`` keeps the default
    durability, so benchmark figures are those of a real installation.

    Raises
    ------
    PostgresUnavailable
        No binaries, running as root without a ``postgres`` user, or the server failed to start.
    """
    bindir = _bindir()
    user = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and no 'postgres' user to run the server as") from None
        user = entry.pw_name
    folder = Path(tempfile.mkdtemp(prefix="calib-pg-"))
    socket_dir = folder / "s"
    socket_dir.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in (folder, socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    server = TempPostgres(folder, socket_dir, bindir, user)
    try:
        _run(server, [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "calib", "-A", "trust", "-E", "UTF8",
                      "--no-sync"])
        options = f"-k {socket_dir} -c listen_addresses='' -c max_connections=50"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run(server, [str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-o", options, "-l",
                      str(folder / "server.log"), "-w", "-t", "60", "start"])
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        log = folder / "server.log"
        tail = log.read_text()[-300:] if log.exists() else ""
        server.stop()
        raise PostgresUnavailable(f"{exc} {tail}".strip()) from None
    return server
