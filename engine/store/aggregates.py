"""Per-file aggregates of the samples, kept in the store: what pages and KPIs read instead of raw rows.

Why: a page that reread a run's raw samples on its first load grew with the
run (the Go / No-Go evidence of a 3.3 M-sample run took 2 s, the standup's
downtime KPI scanned every sample of every run twice, 1.3-1.4 s at 10 M).
The figures the pages show are sums, minima and order statistics over
groups (a run's buckets, versions and seconds), so each sample file's share
of them is computed once, when the file is written for good, and the reader
merges shares instead of rows.

What is kept, per sample file (a compacted chunk of a running run, or the one
file a finished run is compacted into) and per run:

* ``sample_buckets``: per time bucket (the run's ``bucket_s``) and version:
  requests, errors, ok, first and last timestamp, p50/p95/p99 of ok latency;
* ``sample_versions``: per version: the same counts, compared and mismatched
  answers, p50/p95/p99 and a log-bucketed histogram of ok latencies (a
  mergeable sketch, :data:`SKETCH_GAMMA`);
* ``sample_seconds``: per epoch second, version and primary flag: requests,
  ok, ok latency sum, the first timestamp and the first ok timestamp (the
  downtime KPI, cut at any moment, and the risk page's load figures);
* ``sample_latencies``: the ok latencies of the smallest request hashes, up to
  :data:`LATENCY_SAMPLE` per version and run (the page's histogram);
* ``sample_mismatches``: the first :data:`MISMATCH_LIMIT` mismatched pairs.

Exactness. Counts, error rates, mismatch rates, throughput, the buckets'
completeness, downtime seconds, the latency sample and the mismatch examples
are exact: the same figures as the SQL over the raw rows. Quantiles are the
exact ``quantile_cont`` of a file's rows; where a figure spans several files
(a run still going, a run continued by another) a bucket's quantiles are the
ok-weighted mean of its parts' (only the one bucket a chunk boundary cuts),
and a version's are read off the merged sketch: within
``(gamma - 1) / (gamma + 1)`` = 0.5 % of an order statistic.

Crash safety. A file is immutable once it has its name and its aggregates are
keyed by that name. A reader lists the run's visible files (the compacted
file hides the segments it covers, :func:`engine.store.samples.visible`) and
takes each visible file's figures from its aggregates when they were written,
from its raw rows otherwise (the live tail, or a file published just before a
crash); aggregates of files no longer visible are ignored. So whatever the
order in which a compaction and its aggregates land, a reader counts every
row once: before the aggregates, from the raw rows, after them, from the
aggregates. The writer records a file's aggregates after publishing it and
removes, in the same transaction, the aggregates of files no longer visible.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from engine.judge.running import RELATIVE_ACCURACY, SMALLEST_MS
from engine.store.db import connect, query_frame, transaction
from engine.store.samples import all_segments, compact_run, segments
from engine.workspace import Workspace

LATENCY_SAMPLE = 20_000
"""Ok latencies kept per version and run for the latency histogram (a fixed pick: smallest request hash)."""
MISMATCH_LIMIT = 20
"""Mismatched pairs kept per run: the gateway keeps bodies for the first 20 (MISMATCH_EXAMPLES)."""
SKETCH_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
"""Ratio between neighbouring histogram bins, the run watcher's (engine/judge/running.py): a latency is
within 0.5 % of its bin's representative."""
SKETCH_FLOOR_MS = SMALLEST_MS
"""Bin 0 ends here; latencies below it (zero) fall in bin 0."""

TABLES = tuple(f"sample_{t}" for t in ("files", "buckets", "versions", "seconds", "latencies", "mismatches"))


# --------------------------------------------------------------------------- one file's (or the tail's) share

BUCKETS_SQL = """
    SELECT time_bucket(to_microseconds(CAST(? * 1e6 AS BIGINT)), ts) AS bucket, version,
           count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
           count(*) FILTER (WHERE ok IS NOT TRUE) AS not_ok, count(*) FILTER (WHERE ok) AS ok,
           quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE ok) AS q,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM s GROUP BY ALL
"""
VERSIONS_SQL = """
    SELECT v.*, k.sketch_bins, k.sketch_counts FROM (
        SELECT version, count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
               count(*) FILTER (WHERE ok IS NOT TRUE) AS not_ok, count(*) FILTER (WHERE ok) AS ok,
               count(match) AS compared, count(*) FILTER (WHERE NOT match) AS mismatches,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE ok) AS q
        FROM s GROUP BY version
    ) v LEFT JOIN (
        SELECT version, list(bin ORDER BY bin) AS sketch_bins, list(n ORDER BY bin) AS sketch_counts FROM (
            SELECT version, count(*) AS n,
                   CAST(ceil(ln(greatest(latency_ms, ?) / ?) / ln(?)) AS INTEGER) AS bin
            FROM s WHERE ok AND latency_ms IS NOT NULL GROUP BY ALL
        ) GROUP BY version
    ) k ON k.version IS NOT DISTINCT FROM v.version
"""
SECONDS_SQL = """
    SELECT epoch_us(ts) // 1000000 AS second, version, "primary",
           count(*) AS requests, count(*) FILTER (WHERE ok) AS ok,
           count(latency_ms) FILTER (WHERE ok) AS ok_latency_n,
           sum(latency_ms) FILTER (WHERE ok) AS ok_latency_sum,
           min(ts) AS first_ts, min(ts) FILTER (WHERE ok) AS first_ok_ts,
           min(ts) FILTER (WHERE ok) IS DISTINCT FROM min(ts) AS maybe_down
    FROM s GROUP BY ALL
"""
"""``maybe_down``: the second's first request here was not ok, so the second may count as down (at some
moment, or once merged with other files' rows of the same second); where it is false, the first request
was ok and, whatever else holds the second, it was not down at any moment after that request."""
LATENCIES_SQL = """
    SELECT version, x.h AS h, x.l AS latency_ms FROM (
        SELECT version, unnest(min_by({'h': hash(request_id), 'l': latency_ms}, hash(request_id), ?)) AS x
        FROM s WHERE ok GROUP BY version
    )
"""
MISMATCHES_SQL = """
    SELECT n.ts, n.endpoint, o.status AS old_status, n.status AS new_status,
           o.body AS old_body, n.body AS new_body, n.body IS NULL AS no_body, o.version IS NOT NULL AS joined
    FROM (
        SELECT request_id, ts, endpoint, status, body FROM s
        WHERE version = 'new' AND NOT match ORDER BY (body IS NULL), ts LIMIT ?
    ) n LEFT JOIN s o ON o.request_id = n.request_id AND o.version = 'old'
"""
"""The first mismatched new rows and their old rows, kept whether or not an old row exists (``joined``),
so that the run's first ``limit`` are found across files before the page drops the unpaired ones."""


@dataclass(frozen=True)
class Shares:
    """One file's (or a group of raw files') share of every aggregate, as polars frames."""

    rows: int
    buckets: pl.DataFrame
    versions: pl.DataFrame
    seconds: pl.DataFrame
    latencies: pl.DataFrame
    mismatches: pl.DataFrame


OPTIONAL_COLUMNS = {
    "version": "VARCHAR",
    "latency_ms": "DOUBLE",
    "endpoint": "VARCHAR",
    "status": "INTEGER",
    "request_id": "BIGINT",
    "primary": "BOOLEAN",
    "match": "BOOLEAN",
    "body": "VARCHAR",
}
"""Columns older segments (or other writers: a hand-made file with ts, primary and ok) may lack: read as
null there, so every query sees them (``ts`` and ``ok`` are needed)."""


class _Rows:
    """Queries over the rows of some sample files, visible to each as table ``s`` (files as a parameter)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, files: Sequence[Path]):
        self.con, self.files = con, [str(f) for f in files]
        columns = query_frame(
            con, "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [self.files]
        )
        names = set(columns["column_name"].to_list())
        extra = "".join(f", NULL::{t} AS {n}" for n, t in OPTIONAL_COLUMNS.items() if n not in names)
        self.cte = f"WITH s AS (SELECT *{extra} FROM read_parquet(?, union_by_name = true)) "

    def __call__(self, sql: str, params: list | None = None) -> pl.DataFrame:
        return query_frame(self.con, self.cte + sql, [self.files, *(params or [])])


def summarise(files: Sequence[Path], bucket_s: float) -> Shares:
    """The aggregates of the rows in ``files`` taken together (an in-memory connection, no store lock)."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET parquet_metadata_cache = true")
        rows = _Rows(con, files)
        return Shares(
            rows=int(rows("SELECT count(*) AS n FROM s")["n"][0]),
            buckets=_unpack_quantiles(rows(BUCKETS_SQL, [bucket_s])),
            versions=_unpack_quantiles(rows(VERSIONS_SQL, [SKETCH_FLOOR_MS, SKETCH_FLOOR_MS, SKETCH_GAMMA])),
            seconds=rows(SECONDS_SQL),
            latencies=rows(LATENCIES_SQL, [LATENCY_SAMPLE]),
            mismatches=rows(MISMATCHES_SQL, [MISMATCH_LIMIT]),
        )


def _unpack_quantiles(frame: pl.DataFrame) -> pl.DataFrame:
    q = pl.col("q")
    return frame.with_columns(
        q.list.get(0, null_on_oob=True).alias("p50"),
        q.list.get(1, null_on_oob=True).alias("p95"),
        q.list.get(2, null_on_oob=True).alias("p99"),
    ).drop("q")


# --------------------------------------------------------------------------- writing


def _delete_not_visible(con: duckdb.DuckDBPyConnection, system: str, run_id: str, keep: list[str]) -> None:
    for table in TABLES:
        con.execute(
            f"DELETE FROM {table} WHERE system = ? AND run_id = ? AND NOT list_contains(?, file)",  # noqa: S608
            [system, run_id, keep],
        )


def _insert(con: duckdb.DuckDBPyConnection, table: str, key: dict[str, str], frame: pl.DataFrame) -> None:
    if frame.is_empty():
        return
    keyed = frame.with_columns(**{k: pl.lit(v, pl.String) for k, v in key.items()})
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]  # noqa: S608 - constant table names
    con.register("incoming", keyed.select(columns).to_arrow())
    try:
        con.execute(f"INSERT INTO {table} SELECT * FROM incoming")  # noqa: S608
    finally:
        con.unregister("incoming")


def _prune(con: duckdb.DuckDBPyConnection, system: str, run_id: str) -> None:
    """Drop kept latencies and mismatches that can no longer be among the run's first.

    Sound because a run's rows only grow: a row with ``LATENCY_SAMPLE`` smaller
    hashes before it among the visible files keeps them in any later view.
    """
    con.execute(
        """
        DELETE FROM sample_latencies WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, row_number() OVER (PARTITION BY version ORDER BY h) AS rn
                FROM sample_latencies WHERE system = ? AND run_id = ?
            ) WHERE rn > ?
        )
        """,
        [system, run_id, LATENCY_SAMPLE],
    )
    con.execute(
        """
        DELETE FROM sample_mismatches WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, row_number() OVER (ORDER BY no_body, ts) AS rn
                FROM sample_mismatches WHERE system = ? AND run_id = ?
            ) WHERE rn > ?
        )
        """,
        [system, run_id, MISMATCH_LIMIT],
    )


def write_shares(
    con: duckdb.DuckDBPyConnection,
    system: str,
    run_id: str,
    file: str,
    shares: Shares,
    bucket_s: float,
    keep: Iterable[str],
) -> None:
    """Store ``file``'s shares in the caller's transaction; aggregates of files not in ``keep`` go."""
    keep = sorted({*keep, file})
    _delete_not_visible(con, system, run_id, keep)
    for table in TABLES:
        con.execute(
            f"DELETE FROM {table} WHERE system = ? AND run_id = ? AND file = ?",  # noqa: S608
            [system, run_id, file],
        )
    key = {"system": system, "run_id": run_id, "file": file}
    con.execute(
        "INSERT INTO sample_files VALUES (?, ?, ?, ?, ?, ?)",
        [system, run_id, file, bucket_s, shares.rows, dt.datetime.now(dt.UTC)],
    )
    _insert(con, "sample_buckets", key, shares.buckets)
    _insert(con, "sample_versions", key, shares.versions)
    _insert(con, "sample_seconds", key, shares.seconds)
    _insert(con, "sample_latencies", key, shares.latencies)
    _insert(con, "sample_mismatches", key, shares.mismatches)
    _prune(con, system, run_id)


def aggregated_files(con: duckdb.DuckDBPyConnection, system: str, run_id: str) -> dict[str, float]:
    """File name -> bucket width of the files of one run whose aggregates are stored."""
    rows = con.execute(
        "SELECT file, bucket_s FROM sample_files WHERE system = ? AND run_id = ?", [system, run_id]
    ).fetchall()
    return {str(f): float(b) for f, b in rows}


def aggregate_run_in(
    con: duckdb.DuckDBPyConnection, ws: Workspace, system: str, run_id: str, bucket_s: float
) -> int:
    """Aggregate each visible file of the run that has no aggregates yet, in the caller's transaction.

    Returns how many files were aggregated. Used at a run's end, by the
    migration that fills the tables, and to repair what a crash left raw.
    """
    files = segments(ws, system, run_id)
    keep = [f.name for f in files]
    done = aggregated_files(con, system, run_id)
    todo = [f for f in files if done.get(f.name) != bucket_s]
    for f in todo:
        write_shares(con, system, run_id, f.name, summarise([f], bucket_s), bucket_s, keep)
    if not todo:
        _delete_not_visible(con, system, run_id, keep)
    return len(todo)


def record_file(ws: Workspace, system: str, run_id: str, path: Path, bucket_s: float) -> None:
    """Aggregate one newly published file of a run (a compacted chunk) and store it."""
    shares = summarise([path], bucket_s)  # outside the transaction: the store's lock is held briefly
    keep = [f.name for f in segments(ws, system, run_id)]
    with connect(ws.db_path) as con, transaction(con):
        write_shares(con, system, run_id, path.name, shares, bucket_s, keep)


def finish_run(ws: Workspace, system: str, run_id: str, bucket_s: float) -> None:
    """A run nothing writes any more: compact its samples into one file and store that file's aggregates.

    The compaction is published first (it is whole on its own), then its
    aggregates; a crash in between leaves a file readers read raw until the
    next :func:`aggregate_run_in` (the store migration, or a later finish).
    """
    compact_run(ws, system, run_id)
    folder_files = segments(ws, system, run_id)
    if not folder_files:
        return
    shares = {f.name: summarise([f], bucket_s) for f in folder_files}
    keep = list(shares)
    with connect(ws.db_path) as con, transaction(con):
        done = aggregated_files(con, system, run_id)
        for name, share in shares.items():
            if done.get(name) != bucket_s:
                write_shares(con, system, run_id, name, share, bucket_s, keep)
        _delete_not_visible(con, system, run_id, keep)


def fill_existing(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """The store migration's fill: every run on disk compacted (if it has ended) and aggregated.

    Runs the ``runs`` table says are still running are aggregated file by file
    as they are (their watcher compacts them); a folder with no run row is
    taken as ended. Bucket widths come from the run rows (60 s without one).
    """
    ws = Workspace(db_path.parent)
    if not ws.samples_dir.is_dir():
        return
    known = {
        str(r[0]): (str(r[1]), float(r[2]))
        for r in con.execute("SELECT id, status, bucket_s FROM runs").fetchall()
    }
    for folder in sorted(ws.samples_dir.glob("system=*/run=*")):
        system, run_id = folder.parent.name.removeprefix("system="), folder.name.removeprefix("run=")
        status, bucket_s = known.get(run_id, ("ended", 60.0))
        if status != "running":
            compact_run(ws, system, run_id)
        aggregate_run_in(con, ws, system, run_id, bucket_s)


# --------------------------------------------------------------------------- reading

SHARE_COLUMNS = {
    "buckets": "bucket, version, requests, errors, not_ok, ok, p50, p95, p99, first_ts, last_ts",
    "versions": "version, requests, errors, not_ok, ok, compared, mismatches, p50, p95, p99, "
    "sketch_bins, sketch_counts",
    "seconds": 'second, version, "primary", requests, ok, ok_latency_n, ok_latency_sum, '
    "first_ts, first_ok_ts, maybe_down",
    "latencies": "version, h, latency_ms",
    "mismatches": "ts, endpoint, old_status, new_status, old_body, new_body, no_body, joined",
}
"""What a reader takes from each table (``sample_<name>``), in the order the shares have them."""


@dataclass(frozen=True)
class Parts:
    """The shares of some runs' visible files: stored ones read from the store, the rest from raw rows.

    One row per file (or per the raw files together) and group; the readers in
    :mod:`engine.parallel.compare` merge them into what a page shows.
    """

    frames: dict[str, pl.DataFrame]
    stored_files: list[tuple[str, str]]
    """(run id, file name) of the visible files whose aggregates were read."""
    raw_files: list[Path]
    """Visible files read raw: no aggregates stored for them (the live tail, a crash's leftover)."""

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frames[name]


def split_files(
    con: duckdb.DuckDBPyConnection,
    ws: Workspace,
    system: str,
    run_ids: Sequence[str],
    bucket_s: float | None,
) -> tuple[list[tuple[str, str]], list[Path]]:
    """The runs' visible files: (run id, name) of those aggregated at ``bucket_s`` (any if None); the rest."""
    stored: list[tuple[str, str]] = []
    raw: list[Path] = []
    for run_id in run_ids:
        done = aggregated_files(con, system, run_id)
        for f in segments(ws, system, run_id):
            if f.name in done and (bucket_s is None or done[f.name] == bucket_s):
                stored.append((run_id, f.name))
            else:
                raw.append(f)
    return stored, raw


def _read_stored(
    con: duckdb.DuckDBPyConnection, name: str, system: str, files: list[tuple[str, str]]
) -> pl.DataFrame:
    keys = [f"{run}/{file}" for run, file in files]
    return query_frame(
        con,
        f"SELECT {SHARE_COLUMNS[name]} FROM sample_{name} "  # noqa: S608 - constant names, values as parameters
        "WHERE system = ? AND list_contains(?, run_id || '/' || file)",
        [system, keys],
    )


def run_parts(
    ws: Workspace,
    system: str,
    run_ids: Sequence[str],
    bucket_s: float | None,
    what: Sequence[str] = ("buckets", "versions", "latencies", "mismatches"),
) -> Parts | None:
    """The shares of the runs' visible files, for the tables in ``what``; None when there are no samples.

    ``bucket_s`` is the bucket width the caller wants buckets in; a file
    aggregated at another width is read raw (None: buckets are not wanted).
    """
    with connect(ws.db_path) as con:
        con.execute("SET TimeZone = 'UTC'")
        stored, raw = split_files(con, ws, system, run_ids, bucket_s if "buckets" in what else None)
        if not stored and not raw:
            return None
        frames = {name: _read_stored(con, name, system, stored) for name in what}
    if raw:
        tail = summarise(raw, bucket_s or 60.0)
        for name in what:
            stored_frame, share = frames[name], getattr(tail, name).select(frames[name].columns)
            frames[name] = (
                share
                if stored_frame.is_empty()
                else pl.concat([stored_frame, share.cast(stored_frame.schema)])
            )
    return Parts(frames, stored, raw)


def seconds_share(files: Sequence[Path]) -> pl.DataFrame:
    """:data:`SECONDS_SQL` over raw ``files`` (one run's or more)."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return _Rows(con, files)(SECONDS_SQL)


DOWN_SQL = """
    WITH parts AS (
        SELECT a.system, a.second, a.first_ts, a.first_ok_ts, a.maybe_down
        FROM sample_seconds a JOIN visible_files v
             ON a.system = v.system AND a.run_id = v.run_id AND a.file = v.file
        WHERE a."primary"
        UNION ALL
        SELECT system, second, first_ts, first_ok_ts, maybe_down FROM raw_seconds WHERE "primary"
    ), candidates AS (
        SELECT DISTINCT system, second FROM parts WHERE maybe_down
    )
    SELECT system, count(*)::BIGINT AS down_seconds FROM (
        SELECT system, second, min(first_ts) AS first_ts, min(first_ok_ts) AS first_ok_ts
        FROM parts SEMI JOIN candidates USING (system, second) GROUP BY ALL
    ) WHERE first_ts <= ? AND (first_ok_ts IS NULL OR first_ok_ts > ?)
    GROUP BY system ORDER BY system
"""
"""Seconds, per system, in which primary requests were served and none of them, up to ``as_of``, was ok:
a second's first request by then, and no ok one by then (exactly the raw rows' ``bool_or(ok)``). Only
the seconds some file marks ``maybe_down`` can be (the others began with an ok request), so the other
rows are only read for those seconds."""


SERVES_NOBODY = "run=calibration-"
"""Run folders whose traffic reached no client (an A/A run's, :mod:`engine.parallel.calibrate`)."""


def down_seconds(con: duckdb.DuckDBPyConnection, ws: Workspace, as_of: dt.datetime) -> pl.DataFrame:
    """system, down_seconds: the downtime KPI's seconds over every run, from aggregates and the raw tail.

    A/A calibration runs (``calibration-*``) serve nobody, so their failures are no one's downtime.
    """
    files = [f for f in all_segments(ws.samples_dir) if not f.parent.name.startswith(SERVES_NOBODY)]
    rows = con.execute("SELECT system, run_id, file FROM sample_files").fetchall()
    done = {(str(s), str(r), str(f)) for s, r, f in rows}
    keys, raw = [], []
    for f in files:
        key = (f.parent.parent.name.removeprefix("system="), f.parent.name.removeprefix("run="), f.name)
        (keys if key in done else raw).append((key, f))
    key_schema = {"system": pl.String, "run_id": pl.String, "file": pl.String}
    visible_files = pl.DataFrame([k for k, _ in keys], schema=key_schema, orient="row")
    raw_parts = [
        seconds_share([f for _, f in group]).with_columns(system=pl.lit(system))
        for system, group in _by_folder(raw)
    ]
    raw_seconds = (
        pl.concat(raw_parts)
        if raw_parts
        else pl.DataFrame(
            schema={
                "system": pl.String,
                "second": pl.Int64,
                "primary": pl.Boolean,
                "first_ts": pl.Datetime("us", "UTC"),
                "first_ok_ts": pl.Datetime("us", "UTC"),
                "maybe_down": pl.Boolean,
            }
        )
    ).select("system", "second", "primary", "first_ts", "first_ok_ts", "maybe_down")
    con.register("visible_files", visible_files.to_arrow())
    con.register("raw_seconds", raw_seconds.to_arrow())
    try:
        return query_frame(con, DOWN_SQL, [as_of, as_of])
    finally:
        con.unregister("visible_files")
        con.unregister("raw_seconds")


def _by_folder(items: list[tuple[tuple[str, str, str], Path]]) -> list[tuple[str, list[tuple[tuple, Path]]]]:
    """Raw files grouped by run folder, each with its system's name."""
    groups: dict[Path, list] = {}
    for key, f in items:
        groups.setdefault(f.parent, []).append((key, f))
    return [(group[0][0][0], group) for group in groups.values()]
