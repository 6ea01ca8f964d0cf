"""The DuckDB store: schema and migrations, connections, and the queries on each table.

Control state lives in one DuckDB file. DuckDB lets one process write at a
time, so connections are short-lived (open, do one unit of work, close) and a
lock held by another process becomes a clear StoreLockedError after a retry.
"""

from engine.store.db import connect, transaction

__all__ = ["connect", "transaction"]
