"""Engine set-up: SQLite file by default, PostgreSQL by URL; schema created on first use."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, event
from sqlmodel import SQLModel, create_engine

from storage import models  # noqa: F401  (registers the tables)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _normalise(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def get_engine(url: str) -> Engine:
    """One engine per URL per process; the schema is created the first time."""
    url = _normalise(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            SQLModel.metadata.create_all(engine)
            _engines[url] = engine
        return engine


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            # WAL lets the producer write while workers read; busy_timeout rides out the
            # short write locks of other processes instead of failing.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            # Checkpoints ran inside ordinary commits (every 1000 pages), which made the p99
            # of enqueue and claim several times their p50. The watchdog checkpoints each
            # tick instead (`checkpoint()`); this only bounds the WAL if it does not run.
            cur.execute("PRAGMA wal_autocheckpoint=20000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def checkpoint(engine: Engine) -> None:
    """Fold the SQLite WAL back into the database off the hot path (no-op elsewhere)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
