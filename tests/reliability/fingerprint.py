"""What 'the store is unchanged' means in the reliability tests: every table's rows and every file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb

from engine.workspace import Workspace


def store_fingerprint(ws: Workspace, fed: Path | None = None) -> dict[str, Any]:
    """Row count and a hash of every row of every table, and a hash of every file but the database's own
    (and ``fed``, the input a test keeps replacing)."""
    tables: dict[str, Any] = {}
    con = duckdb.connect(str(ws.db_path), read_only=True)
    try:
        # table names come from DuckDB's catalog, not from input (identifiers cannot be parameters)
        names = [
            r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()
        ]
        for name in names:
            rows = "string_agg(t::VARCHAR, chr(10) ORDER BY t::VARCHAR)"
            tables[name] = con.execute(
                f"SELECT count(*), md5(coalesce({rows}, '')) FROM \"{name}\" t"
            ).fetchone()
    finally:
        con.close()
    files = {
        str(p.relative_to(ws.root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ws.root.rglob("*"))
        if p.is_file() and not p.name.startswith("switchyard.duckdb") and p != fed
    }
    return {"tables": tables, "files": files}


def listing(folder: Path, *, recursive: bool) -> set[str]:
    """Every path under ``folder`` (or just its entries), as text."""
    return {str(p) for p in (folder.rglob("*") if recursive else folder.iterdir())}
