"""Run-level locks and transient-error retries for writers of the results database.

Two score runs over the same source must never interleave "read watermark -> score -> commit":
:func:`source_lock` serialises them per source key. PostgreSQL uses a session advisory lock
(``pg_advisory_lock``) on a dedicated connection, released by the server when that connection
ends, also when the process is killed. SQLite uses an ``flock`` on a file beside the database
(``<db>.lock-<key>``, one per source), released by the kernel when the process dies. A second
run waits (or, with ``wait=False``, gets :class:`SourceBusyError`) and then reads the watermark
the first one left.

A run also holds a lock of its own for as long as its process lives (:func:`run_lock`, keyed on
the run id), so another process can tell a live run from a dead one (:func:`run_is_alive`): the
lock is released by the kernel or the server when the process dies, however it dies (SIGKILL,
OOM killer, a lost machine on PostgreSQL).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ecgmon.errors import EcgmonError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Class of the advisory lock keys ecgmon takes (first int of the two-int key form).
LOCK_CLASS = 0x0EC6
#: Class of the run locks (one per live run, keyed on its run id).
RUN_LOCK_CLASS = 0x0EC7


class SourceBusyError(EcgmonError):
    """Another run holds the lock of this source."""


def lock_key(source_key: str) -> int:
    """A stable signed 32-bit key of a source, for ``pg_advisory_lock(LOCK_CLASS, key)``."""
    digest = hashlib.sha256(source_key.encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class SourceLockLostError(EcgmonError):
    """The run lock of a source was lost during the run (its connection ended)."""


def _always_held() -> None:
    """The check of a lock the kernel holds for the process (flock) or of no lock: nothing."""


@contextmanager
def source_lock(engine: Engine, source_key: str, wait: bool = True) -> Iterator[Callable[[], None]]:
    """Hold the run lock of ``source_key`` for the block (wait for it, or raise when busy).

    Yields a check that raises :class:`SourceLockLostError` if the lock is no longer held: a
    PostgreSQL advisory lock ends with its connection, so a writer calls the check before each
    commit (one round trip a batch) rather than write on unguarded. Any stable name works as a
    key: the model registry takes one to allocate versions."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, source_key, wait) as held:
            yield held
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with _file_lock(Path(engine.url.database), source_key, wait):
            yield _always_held
    else:
        yield _always_held


@contextmanager
def _pg_lock(engine: Engine, source_key: str, wait: bool) -> Iterator[Callable[[], None]]:
    key = lock_key(source_key)
    with engine.connect() as conn:
        if wait:
            conn.execute(sa.text("SELECT pg_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key})
        elif not conn.execute(
            sa.text("SELECT pg_try_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key}
        ).scalar():
            raise SourceBusyError(f"another run is scoring {source_key}; try again later")
        conn.commit()
        log.debug("holding the run lock of %s", source_key)
        guard = threading.Lock()  # writer threads share the lock's connection for the check

        def held() -> None:
            try:
                with guard:
                    conn.exec_driver_sql("SELECT 1")
                    conn.commit()
            except (sa.exc.DBAPIError, psycopg.Error) as err:
                raise SourceLockLostError(
                    f"the run lock of {source_key} was lost (its connection ended); stopping "
                    "before the next commit"
                ) from err

        try:
            yield held
        finally:
            try:
                conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": key}
                )
                conn.commit()
            except (sa.exc.SQLAlchemyError, psycopg.Error):  # the connection, and lock, are gone
                log.warning("the run lock of %s had been lost", source_key)


@contextmanager
def _file_lock(database: Path, source_key: str, wait: bool) -> Iterator[None]:
    path = database.with_name(f"{database.name}.lock-{lock_key(source_key) & 0xFFFFFFFF:08x}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(handle.fileno(), flags)
        except BlockingIOError as err:
            raise SourceBusyError(f"another run is scoring {source_key}; try again later") from err
        log.debug("holding the run lock of %s (%s)", source_key, path)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def run_lock(engine: Engine, run_id: str) -> Iterator[None]:
    """Hold the lock of run ``run_id`` for the block: the run is alive while it is held.

    PostgreSQL: a session advisory lock on a dedicated connection. SQLite: an ``flock`` on
    ``<db>.runs/<run_id>.lock``, removed when the block ends (a killed run's file is removed by
    the first :func:`run_is_alive` that finds it dead). Other databases (in-memory SQLite):
    no lock, and :func:`run_is_alive` always says alive."""
    if engine.dialect.name == "postgresql":
        key = {"c": RUN_LOCK_CLASS, "k": lock_key(run_id)}
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:c, :k)"), key)
            conn.commit()
            try:
                yield
            finally:
                _pg_unlock(conn, key)
    elif (path := _run_lock_path(engine, run_id)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # a checker holds it for a moment only
            try:
                yield
            finally:
                path.unlink(missing_ok=True)
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    else:
        yield


def _pg_unlock(conn: sa.Connection, key: dict) -> None:
    """Release a run lock. If that fails the connection is closed, not pooled, which ends its
    session and so the lock (the run's own error, if any, is the one raised)."""
    try:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"), key)
        conn.commit()
    except sa.exc.DBAPIError as err:
        log.warning("run lock released by closing its connection (%s)", type(err).__name__)
        conn.invalidate()


def run_is_alive(engine: Engine, run_id: str) -> bool:
    """True while the process of run ``run_id`` holds its :func:`run_lock` (or when it cannot be
    told); False once that process has ended, or if it never took the lock."""
    if engine.dialect.name == "postgresql":
        key = {"c": RUN_LOCK_CLASS, "k": lock_key(run_id)}
        with engine.connect() as conn:
            free = conn.execute(sa.text("SELECT pg_try_advisory_lock(:c, :k)"), key).scalar()
            if free:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:c, :k)"), key)
            conn.commit()
        return not free
    path = _run_lock_path(engine, run_id)
    if path is None:
        return True
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return True
    path.unlink(missing_ok=True)  # a dead run's file, removed while its lock is held here
    os.close(fd)  # closing the descriptor also releases the lock taken on it
    return False


def _run_lock_path(engine: Engine, run_id: str) -> Path | None:
    """``<db>.runs/<run id>.lock`` beside a SQLite file, None for other databases."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    database = Path(engine.url.database)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
    return database.with_name(f"{database.name}.runs") / f"{safe}.lock"


#: SQLSTATE of a full disk (PostgreSQL) and SQLite's message for it: not transient.
DISK_FULL_SQLSTATE = "53100"
_DISK_FULL_WORDS = ("database or disk is full", "no space left on device", "disk full")


def is_transient(err: BaseException) -> bool:
    """True for database errors worth retrying: lost connections, locks, serialisation.

    Errors the driver raises itself count too (a binary COPY runs on psycopg's own connection,
    so its connection errors are not wrapped by SQLAlchemy). A full disk is not transient: a
    retry cannot free space, and waiting on it keeps the run ``running`` longer."""
    if is_disk_full(err):
        return False
    if isinstance(err, sa.exc.DBAPIError) and err.connection_invalidated:
        return True
    if isinstance(err, sa.exc.OperationalError | psycopg.OperationalError):
        return True
    if isinstance(err, psycopg.InterfaceError) or _sqlstate(err).startswith("08"):
        return True  # a closed connection; class 08: connection exception
    text = str(getattr(err, "orig", err)).lower()
    return any(word in text for word in ("deadlock", "could not serialize", "database is locked"))


def is_disk_full(err: BaseException) -> bool:
    """Whether a database error says the disk is full (PostgreSQL 53100, SQLite SQLITE_FULL)."""
    text = str(getattr(err, "orig", err)).lower()
    return _sqlstate(err) == DISK_FULL_SQLSTATE or any(w in text for w in _DISK_FULL_WORDS)


def _sqlstate(err: BaseException) -> str:
    return str(getattr(getattr(err, "orig", err), "sqlstate", None) or "")


def retry_transient(
    action: Callable[[], T], attempts: int = 4, base_delay: float = 0.5, what: str = "write"
) -> T:
    """Run ``action``; on a transient database error wait 0.5 s, 1 s, 2 s ... and try again.

    ``action`` must be one transaction (all or nothing), so a failed attempt leaves nothing;
    a transaction the server committed but whose outcome the client lost must be an upsert
    (batches carry an idempotency key for their run's counts). The last error is raised
    unchanged when every attempt failed.
    """
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as err:
            if attempt == attempts or not is_transient(err):
                raise
            delay = base_delay * 2 ** (attempt - 1)
            log.warning(
                "database %s failed (%s), attempt %d of %d; retrying in %.1f s",
                what,
                type(getattr(err, "orig", err)).__name__,
                attempt,
                attempts,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable")
