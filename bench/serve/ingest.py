"""One upload checked and stored, in a thread of the app's own process or in a worker process.

Checking is Python and holds the GIL: one process checks on one core, however many threads it
runs. So `edgebench serve` hands each upload (the body bytes) to one of a few worker processes,
each with its own Store, and its own process only speaks HTTP; an upload goes to whichever
worker is free, so a few busy client connections still spread over every core. Workers are
spawned (not forked: the server runs threads) when the app starts. On SQLite they queue for
the write lock on one lock shared by all processes, handed over at once, where SQLite's own
busy handler would poll with sleeps. create_app runs uploads in threads unless asked for
workers; the answers are the same (tests/test_serve_workers.py).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.results.validate import RowError
from bench.serve import storage_engine
from bench.serve.batch import ResultBatch
from bench.serve.checks import check_quality_upload, check_results_upload
from bench.serve.limits import IDLE_RELEASE_S, release_memory
from bench.serve.storage import RunNotYours, Store, StoreBusy


@dataclass(frozen=True)
class Ingested:
    """What became of an upload: `payload` (status 201/200) or the problems (`errors`, or one
    `message`) and, for a retryable status, how long to wait."""

    status: int
    payload: dict[str, Any] | None = None
    errors: tuple[RowError, ...] = ()
    error_count: int = 0
    message: str = ""
    retry_after_s: float | None = None


def ingest(store: Store, kind: str, data: bytes, *, max_rows: int, now: datetime,
           token_id: int | None) -> Ingested:
    """Check `data` (kind "results" or "quality") and store its rows, all or nothing."""
    import sqlalchemy as sa

    if kind == "results":
        checked = check_results_upload(data, max_rows=max_rows, now=now,
                                       copy_csv=store.engine.dialect.name == "postgresql")
        store_fn = store.store_rows
    else:
        checked = check_quality_upload(data, max_rows=max_rows, now=now)
        store_fn = store.store_quality_rows
    del data
    if checked.errors:
        return Ingested(checked.status, errors=tuple(checked.errors),
                        error_count=checked.error_count)
    rows = checked.rows
    try:
        outcome = store_fn(rows, token_id)
    except StoreBusy as exc:
        return Ingested(503, message=f"the database is busy; retry in {exc.retry_after_s:g} s "
                                     "(re-sending is safe)", retry_after_s=exc.retry_after_s)
    except RunNotYours as exc:
        return Ingested(403, message=str(exc))
    except sa.exc.IntegrityError:  # the store retries these; still racing: the client may too
        return Ingested(409, message="a concurrent upload is storing the same rows; retry "
                                     "(re-sending is safe)", retry_after_s=1.0)
    if outcome.conflicts:
        return Ingested(409, errors=tuple(RowError(i + 2, None, msg)
                                          for i, msg in outcome.conflicts),
                        error_count=len(outcome.conflicts))
    run_ids = rows.run_ids() if isinstance(rows, ResultBatch) else sorted(
        {r.run_id for r in rows})
    return Ingested(201 if outcome.stored else 200, payload={
        "run_ids": run_ids, "rows": len(rows), "stored": outcome.stored,
        "duplicates": outcome.duplicates})


# ------------------------------------------------------------------ worker processes
_STORE: Store | None = None
_IDLE = {"since": time.monotonic(), "dirty": False, "busy": False}


def _start_worker(db_url: str, write_lock: Any) -> None:
    global _STORE
    if write_lock is not None:
        storage_engine.share_write_lock(db_url, write_lock)
    _STORE = Store(db_url, one_thread=True)
    threading.Thread(target=_release_when_idle, daemon=True).start()
    threading.Thread(target=_exit_with_parent, daemon=True).start()


def _exit_with_parent() -> None:
    """A worker ends when the server process does, also when that was killed (-9): the pool
    would not tell it, and it would wait for uploads forever. An upload it was storing is
    rolled back by the database (the transaction never commits)."""
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(1)


def _release_when_idle() -> None:
    """A worker gives memory back once no upload has reached it for IDLE_RELEASE_S."""
    while True:
        time.sleep(IDLE_RELEASE_S)
        if (_IDLE["dirty"] and not _IDLE["busy"]
                and time.monotonic() - _IDLE["since"] >= IDLE_RELEASE_S):
            _IDLE["dirty"] = False
            release_memory()


def _ingest_in_worker(kind: str, data: bytes, max_rows: int, now: datetime,
                      token_id: int | None) -> Ingested:
    assert _STORE is not None, "the worker was not started by IngestWorkers"
    _IDLE["busy"] = True
    try:  # memory goes back in _release_when_idle, not here: the answer need not wait for it
        return ingest(_STORE, kind, data, max_rows=max_rows, now=now, token_id=token_id)
    finally:
        _IDLE.update(busy=False, dirty=True, since=time.monotonic())


def _ready() -> bool:
    return _STORE is not None


class IngestWorkers:
    """`workers` spawned processes that check and store uploads (see the module docstring)."""

    def __init__(self, db_url: str, workers: int) -> None:
        self.db_url = db_url
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.executor = self._executor()

    def _executor(self) -> ProcessPoolExecutor:
        """A pool with its own write lock: a worker killed while holding one leaves it held
        (SQLite's own file lock dies with the process)."""
        lock = self.context.Lock() if storage_engine.is_sqlite_file(self.db_url) else None
        return ProcessPoolExecutor(self.workers, mp_context=self.context,
                                   initializer=_start_worker, initargs=(self.db_url, lock))

    def start(self) -> None:
        """Spawns every worker now (each imports the checks and opens the store), so the
        first uploads do not wait for that."""
        for future in [self.executor.submit(_ready) for _ in range(self.workers)]:
            future.result()

    async def run(self, kind: str, data: bytes, *, max_rows: int, now: datetime,
                  token_id: int | None) -> Ingested:
        loop = asyncio.get_running_loop()
        executor = self.executor
        try:
            return await loop.run_in_executor(executor, _ingest_in_worker, kind, data,
                                              max_rows, now, token_id)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh
            if self.executor is executor:
                self.executor = self._executor()
            return Ingested(503, message="an upload worker stopped; retry (re-sending is "
                                         "safe)", retry_after_s=1.0)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
