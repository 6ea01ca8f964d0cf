"""A token that changes with every committed write a page can show.

The pages cache what they draw (``st.cache_data`` in ``pages/``; the engine
itself caches nothing) keyed on this token, so a cached view is reused only
while the store is unchanged: a promote, rollback, verdict, checklist or
import is on screen at the next rerun. It is one cheap query of aggregates
over the small control tables (a few thousand rows at most); the samples are
versioned apart, by their folders (:func:`engine.store.samples.samples_version`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import duckdb

VERSION_SQL = """
SELECT 'events', max(id)::VARCHAR || '/' || count(*)::VARCHAR FROM events
UNION ALL SELECT 'systems', sum(hash(name, state, version, updated_at))::VARCHAR FROM systems
UNION ALL SELECT 'validations', max(id)::VARCHAR || '/' || count(*)::VARCHAR FROM validations
UNION ALL SELECT 'conversions', max(id)::VARCHAR FROM conversions
UNION ALL SELECT 'verdicts', max(id)::VARCHAR || '/' || count(*)::VARCHAR FROM verdicts
UNION ALL SELECT 'checklist_acks', max(id)::VARCHAR FROM checklist_acks
UNION ALL SELECT 'runs', sum(hash(id, status, ended_at, stop_requested, samples))::VARCHAR FROM runs
"""
"""One row per table. Rows updated in place (systems, runs) enter by a hash of what changes, so even
a write that skips the engine (a test's raw UPDATE) moves the token; the append-only tables by their
newest id and count. A union of small aggregates: as scalar subqueries the same figures took 30-100 ms
to plan and schedule, as a union some 4 ms."""


def store_version(con: duckdb.DuckDBPyConnection) -> tuple[tuple[str, str], ...]:
    """The token for the store open on ``con`` (hashable; equal tokens mean nothing a page shows changed)."""
    return tuple(sorted((str(table), str(value)) for table, value in con.execute(VERSION_SQL).fetchall()))


def files_version(paths: Iterable[Path]) -> tuple[tuple[str, int | None, int | None], ...]:
    """A token for files a view reads beside the store: each file's modification time and size, each
    folder's entries' (a folder's own time does not move when a file in it is rewritten); None for a
    missing path. Stats only, no file opened."""
    out: list[tuple[str, int | None, int | None]] = []
    for path in paths:
        if path.is_dir():
            with os.scandir(path) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    info = entry.stat()
                    out.append((f"{path}/{entry.name}", info.st_mtime_ns, info.st_size))
        else:
            try:
                info = path.stat()
            except OSError:
                out.append((str(path), None, None))
            else:
                out.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(out)
