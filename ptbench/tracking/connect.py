"""Opening a tracking store safely: SQLite's first open under a folder lock, and a database
server asked once before MLflow's engine (which retries in silence) is."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from ptbench.databases import connect_args


@contextlib.contextmanager
def first_open(uri: str):
    """Opening a SQLite store creates or migrates its tables; two drivers doing it at once on a
    new project collide ('duplicate column name'). The store's folder is locked meanwhile (a
    server store migrates in its own process)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    folder = Path(uri.removeprefix("sqlite:///")).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


_DATABASES = ("postgresql", "mysql", "mssql")  # what MLflow's SQL store takes besides SQLite


def reach_database(uri: str) -> None:
    """Connect once before MLflow does: its engine retries a refused database ten times with
    back-off (~100 s) before it fails, so a mistyped host or a server that is down kept every
    command silent for a minute and a half. A server that is down at start is the user's to
    fix, not a blip to wait out."""
    if uri.split("://")[0].split("+")[0] not in _DATABASES:
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args=connect_args(uri))
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()
