"""Engines for the store, and the retry loop every write transaction runs in.

SQLite (the embedded default) runs in WAL mode, so readers never block the one writer and the
writer never blocks readers; synchronous=NORMAL (durable at checkpoints, never corrupt); a busy
timeout so a writer waits for the lock instead of failing at once; and write transactions begin
IMMEDIATE, taking the write lock up front: a deferred transaction that reads and then writes can
fail with SQLITE_BUSY at once, which no timeout helps. Reads begin deferred and take no lock.

PostgreSQL serves shared deployments; deadlocks and serialization failures are retried.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, TypeVar

import sqlalchemy as sa

from bench.errors import EdgebenchError

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_S = 2.0  # one attempt's wait for the write lock
RETRY_FOR_S = 10.0  # all attempts of one write transaction together
RETRY_AFTER_S = 1.0  # what StoreBusy suggests to the client
_WRITE = "edgebench_write"  # the execution option that makes a SQLite BEGIN IMMEDIATE
# serialization failure, deadlock, lock not available
_PG_RETRY_STATES = {"40001", "40P01", "55P03"}
_INTEGRITY_RETRIES = 2  # a unique key taken by a concurrent writer between our check and insert
URL_HINT = "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"
# Writers of one process queue on a lock per SQLite file and hand over at once; waiting in
# SQLite's busy handler instead polls with sleeps of up to 100 ms, leaving the lock idle.
# Other processes on the same file still meet at SQLite's own lock (the busy timeout).
_PATH_LOCKS: dict[str, Any] = {}  # a threading.Lock, or a shared multiprocessing.Lock
_PATH_LOCKS_GUARD = threading.Lock()
_ENGINE_LOCKS: "weakref.WeakKeyDictionary[sa.Engine, Any]" = weakref.WeakKeyDictionary()


class StoreBusy(Exception):
    """The database stayed locked for the whole retry budget: answer 503 and ask the client to
    come back after retry_after_s. Nothing of the transaction was stored."""

    def __init__(self, retry_after_s: float, detail: str = "") -> None:
        super().__init__(f"the database is busy; retry after {retry_after_s:g} s"
                         + (f" ({detail})" if detail else ""))
        self.retry_after_s = retry_after_s


def normalise_url(db_url: str) -> sa.URL:
    """postgresql:// and postgres:// mean psycopg 3 (the driver the serve extra installs)."""
    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError:
        raise EdgebenchError(f"database URL {db_url!r} is not a URL: {URL_HINT}") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    backend = url.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise EdgebenchError(f"database {backend!r} is not supported: {URL_HINT}")
    return url


def _sqlite_path(url: sa.URL) -> str | None:
    """The resolved file of a SQLite URL; None for PostgreSQL and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return str(Path(url.database).expanduser().resolve())


def is_sqlite_file(db_url: str) -> bool:
    return _sqlite_path(normalise_url(db_url)) is not None


def share_write_lock(db_url: str, lock: Any) -> None:
    """Writers to this SQLite file queue on `lock` (a multiprocessing.Lock the server's
    processes share) instead of on a lock of this process only; call before making engines."""
    path = _sqlite_path(normalise_url(db_url))
    if path is not None:
        with _PATH_LOCKS_GUARD:
            _PATH_LOCKS[path] = lock


def make_engine(db_url: str, *, busy_timeout_s: float = SQLITE_BUSY_TIMEOUT_S) -> sa.Engine:
    url = normalise_url(db_url)
    if url.get_backend_name() == "postgresql":
        try:
            return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        except ModuleNotFoundError as exc:
            raise EdgebenchError(f"a PostgreSQL store needs the {exc.name} module: "
                                 "pip install 'edgebench[serve]'") from None
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False,
                                               "timeout": busy_timeout_s}}
    in_memory = not url.database or url.database == ":memory:"
    if in_memory:
        kwargs["poolclass"] = sa.pool.StaticPool  # one shared in-memory database
    else:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)
    if in_memory:  # one connection shared by every thread: one writer at a time
        _ENGINE_LOCKS[engine] = threading.Lock()
    else:
        with _PATH_LOCKS_GUARD:
            path = _sqlite_path(url)
            _ENGINE_LOCKS[engine] = _PATH_LOCKS.setdefault(path, threading.Lock())

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver's own BEGIN handling off: ours below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        if not in_memory:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE)
                             else "BEGIN")

    return engine


def _busy(exc: sa.exc.DBAPIError) -> bool:
    """A lock or a concurrency failure that a later attempt can get past."""
    state = getattr(exc.orig, "sqlstate", None)
    if state in _PG_RETRY_STATES:
        return True
    text = str(exc.orig).lower()
    return isinstance(exc, sa.exc.OperationalError) and ("locked" in text or "busy" in text)


def run_write(engine: sa.Engine, work: Callable[[sa.Connection], T], *,
              retry_for_s: float = RETRY_FOR_S, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> T:
    """`work` in one write transaction, committed when it returns, rolled back when it raises;
    run again after a lock timeout, deadlock or unique-key race until retry_for_s has passed,
    then StoreBusy. work must be safe to run again (it sees the database afresh each time)."""
    deadline = clock() + retry_for_s
    delay_s = 0.02
    integrity_left = _INTEGRITY_RETRIES
    queue = _ENGINE_LOCKS.get(engine)
    while True:
        try:
            if queue is not None and not queue.acquire(timeout=max(deadline - clock(), 0.001)):
                raise StoreBusy(RETRY_AFTER_S, "other writers in this process held the database")
            try:
                with engine.connect() as conn:
                    conn.execution_options(**{_WRITE: True})
                    with conn.begin():
                        return work(conn)
            finally:
                if queue is not None:
                    queue.release()
        except sa.exc.IntegrityError:
            if integrity_left == 0:
                raise
            integrity_left -= 1
        except sa.exc.TimeoutError as exc:  # every pooled connection in use for pool_timeout
            raise StoreBusy(RETRY_AFTER_S, "no free database connection") from exc
        except sa.exc.DBAPIError as exc:
            if not _busy(exc):
                raise
            if clock() + delay_s > deadline:
                raise StoreBusy(RETRY_AFTER_S, str(exc.orig).splitlines()[0]) from exc
        sleep(delay_s * random.uniform(0.5, 1.0))
        delay_s = min(delay_s * 2, 0.5)
