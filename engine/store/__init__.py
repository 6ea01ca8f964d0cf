"""The DuckDB store: schema and migrations, connections, and the queries on each table.

Control state lives in one DuckDB file. DuckDB lets one process write at a
time, so connections are short-lived (open, do one unit of work, close) and a
lock held by another process becomes a clear StoreLockedError after a retry.

``connect`` and ``transaction`` are re-exported lazily (PEP 562): the gateway
imports :mod:`engine.store.recorded_requests`, which is plain Parquet, and
must not load DuckDB on the request path (one writer at a time; see
tests/metrics/test_metrics_units.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.store.db import connect, transaction

__all__ = ["connect", "transaction"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from engine.store import db

        return getattr(db, name)
    raise AttributeError(f"module 'engine.store' has no attribute {name!r}")
