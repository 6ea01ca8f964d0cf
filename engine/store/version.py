"""A token that changes with every committed write a page can show.

The pages cache what they draw (``st.cache_data`` in ``pages/``; the engine
itself caches nothing) keyed on this token, so a cached view is reused only
while the store is unchanged: a promote, rollback, verdict, checklist or
import is on screen at the next rerun. It is one cheap query of aggregates
over the small control tables (a few thousand rows at most); the samples are
versioned apart, by their folders (:func:`engine.store.samples.samples_version`).
"""

from __future__ import annotations

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
