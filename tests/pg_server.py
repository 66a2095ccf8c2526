"""A throwaway PostgreSQL server for the tests and the benchmarks.

`start_postgres()` runs `initdb` and `pg_ctl` from /usr/lib/postgresql/<version>/bin (the
newest version there; $EDGEBENCH_PG_BIN names another folder), with the data directory, the
log and the unix socket directory in one fresh temporary directory, listening on 127.0.0.1 at a
free port, with trust authentication for the superuser `postgres`. Both programs refuse to run
as root, so under root they run as `nobody` (setpriv, else runuser) and the temporary directory
is given to that user. `stop()` stops the server (immediate mode) and deletes the directory; it
also runs at interpreter exit, so an interrupted session leaves nothing behind.

Where the binaries or psycopg are missing, `start_postgres` raises `PgUnavailable` (the
fixture skips, or fails under CI=true); any other failure is an error with the server's log.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

PG_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED_USER = "nobody"
INSTALL_HINT = "install Debian's postgresql package (apt-get install postgresql)"


class PgUnavailable(Exception):
    """PostgreSQL cannot be started here for lack of something installable; says what."""


def skip_or_fail(reason: str) -> NoReturn:
    """Where PostgreSQL is missing a test skips, saying why; under CI=true (where .ci/run
    installs it) a missing server is a failure, so the PostgreSQL tests cannot pass by not
    running."""
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true needs PostgreSQL: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def find_pg_bin() -> Path | None:
    """The folder with initdb and pg_ctl: $EDGEBENCH_PG_BIN, else the newest
    /usr/lib/postgresql/<version>/bin, else the folder of a pg_ctl on PATH."""
    def usable(folder: Path) -> bool:
        return (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()

    if os.environ.get("EDGEBENCH_PG_BIN"):
        folder = Path(os.environ["EDGEBENCH_PG_BIN"])
        return folder if usable(folder) else None
    versions = [p for p in PG_ROOT.glob("*/bin") if p.parent.name.isdigit() and usable(p)]
    if versions:
        return max(versions, key=lambda p: int(p.parent.name))
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and usable(Path(on_path).parent) else None


def _as_unprivileged() -> tuple[list[str], int, int] | None:
    """(command prefix, uid, gid) to drop root; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise PgUnavailable(f"running as root and there is no user {UNPRIVILEGED_USER!r} to run "
                            "PostgreSQL as; run the tests as a normal user") from None
    if shutil.which("setpriv"):
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    elif shutil.which("runuser"):
        prefix = ["runuser", "-u", UNPRIVILEGED_USER, "--"]
    else:
        raise PgUnavailable("running as root and neither setpriv nor runuser is installed "
                            "(util-linux) to run PostgreSQL as an unprivileged user")
    return prefix, user.pw_uid, user.pw_gid


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    """A running throwaway server; `url(name)` is a SQLAlchemy URL for database `name`."""

    bin_dir: Path
    root: Path
    port: int
    prefix: list[str]
    version: str = ""
    _stopped: bool = field(default=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (its name is returned); cheap enough for one per test."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: use lowercase letters, digits and _")
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drops it even while a test's engine still holds connections to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _pg_ctl(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), *args],
                              capture_output=True, text=True, timeout=timeout_s)

    def log_tail(self, chars: int = 3000) -> str:
        log = self.root / "server.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"

    def stop(self) -> None:
        """Idempotent: stops the server and removes its temporary directory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._pg_ctl("stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(*, durable: bool = False, timeout_s: float = 60,
                   attempts: int = 3) -> PgServer:
    """A fresh server on a free port. durable=False turns fsync and synchronous commit off
    (tests: nothing to keep); a benchmark comparing engines should pass durable=True."""
    try:
        import psycopg  # noqa: F401  (the driver the service uses)
    except ImportError:
        raise PgUnavailable("psycopg is not installed: pip install -e '.[serve]'") from None
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise PgUnavailable(f"no initdb/pg_ctl under {PG_ROOT}/<version>/bin: {INSTALL_HINT}")
    drop = _as_unprivileged()
    prefix = drop[0] if drop else []
    root = Path(tempfile.mkdtemp(prefix="edgebench-pg-"))
    if drop:
        os.chown(root, drop[1], drop[2])
    server = PgServer(bin_dir, root, 0, prefix)
    atexit.register(server.stop)
    try:
        init = subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(server.data_dir), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            capture_output=True, text=True, timeout=timeout_s, env={**os.environ, "LC_ALL": "C"})
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
        server.version = bin_dir.parent.name
        settings = "-c listen_addresses=127.0.0.1 -c max_connections=200"
        if not durable:
            settings += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for attempt in range(attempts):
            server.port = _free_port()
            done = server._pg_ctl(
                "start", "-D", str(server.data_dir), "-l", str(root / "server.log"), "-w",
                "-t", str(int(timeout_s)), "-o", f"-p {server.port} -k {root} {settings}",
                timeout_s=timeout_s + 10)
            if done.returncode == 0:
                return server
            if "could not bind" not in server.log_tail() or attempt == attempts - 1:
                raise RuntimeError(f"pg_ctl start failed ({done.returncode}): "
                                   f"{done.stderr[-1000:]}\n{server.log_tail()}")
            time.sleep(0.2)  # the free port was taken meanwhile: try another
        raise AssertionError("unreachable")
    except BaseException:
        server.stop()
        raise


if __name__ == "__main__":  # a quick check by hand: start, create a database, stop, with times
    t0 = time.perf_counter()
    srv = start_postgres()
    t1 = time.perf_counter()
    db = srv.create_database()
    t2 = time.perf_counter()
    srv.drop_database(db)
    t3 = time.perf_counter()
    srv.stop()
    t4 = time.perf_counter()
    print(f"PostgreSQL {srv.version} on port {srv.port}: start {t1 - t0:.2f} s, "
          f"create database {t2 - t1:.3f} s, drop {t3 - t2:.3f} s, stop {t4 - t3:.2f} s")
