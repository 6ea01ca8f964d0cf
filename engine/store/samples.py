"""Parallel-run samples as Parquet segments: ``samples/system=<s>/run=<id>/part-*.parquet``.

The gateway writes the segments (temp name, then rename); this module reads
them back with DuckDB's ``read_parquet`` on an in-memory connection, so a
reader never needs the control store's lock and never sees half a file.

A finished run's segments are compacted into one file (:func:`compact_run`):
the gateway writes a segment a second, and a day-long run's 86 400 files made
its evidence take minutes to read. The compacted file names the segments it
covers in its Parquet metadata, and readers (:func:`visible`) skip covered
segments, so the one rename that publishes it is the whole switch: a crash
before it leaves the segments, after it leaves at most covered leftovers,
which nothing reads and the next compaction removes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from engine.judge.samples import CANONICAL
from engine.store.db import query_frame
from engine.workspace import Workspace, safe_child

JUDGE_COLUMNS = tuple(CANONICAL)


def run_folder(ws: Workspace, system: str, run_id: str) -> Path:
    safe_child(ws.samples_dir, system)
    return ws.samples_dir / f"system={system}" / f"run={run_id}"


RunIds = str | Sequence[str]
"""One run, or the runs read as one: a run and the earlier runs it continues (oldest first)."""


def _ids(run_id: RunIds) -> list[str]:
    return [run_id] if isinstance(run_id, str) else list(run_id)


def segments(ws: Workspace, system: str, run_id: RunIds) -> list[Path]:
    """The run's readable segment files, covered ones left out (see the module docstring)."""
    return [f for one in _ids(run_id) for f in visible(run_folder(ws, system, one).glob("part-*.parquet"))]


COMPACTED_PREFIX = "part-compacted-"
COVERS_KEY = b"switchyard.covers"


def _covers(path: Path) -> frozenset[str]:
    """Names of the segments a compacted file replaces (from its footer; nothing else is read)."""
    stat = path.stat()
    return _covers_of(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _covers_of(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """A compacted file's footer is read once per process: a file never changes under its name (the
    modification time and size are in the key all the same). The KPIs list every run's files."""
    metadata = pq.read_metadata(path).metadata or {}
    return frozenset(json.loads(metadata.get(COVERS_KEY, b"[]")))


def visible(files: Iterable[Path]) -> list[Path]:
    """``files`` (segments of one or more run folders) without those a compacted file covers."""
    files = sorted(files)
    covered: dict[Path, set[str]] = {}
    for f in files:
        if f.name.startswith(COMPACTED_PREFIX):
            covered.setdefault(f.parent, set()).update(_covers(f))
    if not covered:
        return files
    return [f for f in files if f.name not in covered.get(f.parent, ())]


def all_segments(samples_dir: Path) -> list[Path]:
    """Every readable segment of every run (for reads across runs, such as the downtime KPI)."""
    return visible(samples_dir.glob("system=*/run=*/part-*.parquet"))


@dataclass(frozen=True)
class Compaction:
    files_before: int
    files_after: int
    rows: int
    published: Path | None = None
    """The merged file, when one was written (its aggregates are the caller's to record)."""


def compact_run(ws: Workspace, system: str, run_id: str, *, only: Iterable[Path] | None = None) -> Compaction:
    """Merge a run's segments into one file, then remove them (see the module docstring).

    Without ``only``: every segment, for a run nothing writes any more (the
    gateway no longer records it). With ``only``: those of them, for a run still
    being written (the segments it names are complete; new ones keep coming).
    The merged file is checked before anything is removed: its row count must
    equal the segments' sum, read from their footers.
    """
    folder = run_folder(ws, system, run_id)
    present = sorted(folder.glob("part-*.parquet"))
    files = visible(present)
    for leftover in set(present) - set(files):  # covered by a published file: a crash stopped the unlinks
        leftover.unlink(missing_ok=True)
    if only is not None:
        wanted = set(only)
        files = [f for f in files if f in wanted]
    if len(files) <= 1:
        return Compaction(len(files), len(files), sum(pq.read_metadata(f).num_rows for f in files))
    expected = sum(pq.read_metadata(f).num_rows for f in files)
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    final = folder / f"{COMPACTED_PREFIX}{stamp}.parquet"
    temp = final.with_suffix(".parquet.tmp")
    covers = json.dumps([f.name for f in files]).encode()
    _write_sorted(files, temp, {COVERS_KEY: covers})
    if pq.read_metadata(temp).num_rows != expected:
        temp.unlink()
        raise OSError(f"{folder}: compacted file does not hold the segments' {expected} rows; kept them")
    with open(temp, "rb") as written:
        os.fsync(written.fileno())
    os.replace(temp, final)  # the switch: from here on readers skip the covered segments
    for f in files:
        f.unlink(missing_ok=True)
    return Compaction(len(files), 1, expected, final)


COMPACT_BATCH_ROWS = 1_000_000
"""Rows per batch (and Parquet row group) while compacting: memory stays near one batch, not the run."""


def _write_sorted(files: list[Path], target: Path, metadata: dict[bytes, bytes]) -> None:
    """``files``' rows in time order as one zstd Parquet file, streamed batch by batch.

    DuckDB sorts (spilling to disk if the run is larger than memory) and
    hands the rows over in batches that are written as they come: a 24 h run
    of 33 M samples once took its whole size in memory, twice, to compact.
    """
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        paths = [str(f) for f in files]
        query = con.sql("SELECT * FROM read_parquet(?, union_by_name = true) ORDER BY ts", params=[paths])
        reader = query.to_arrow_reader(COMPACT_BATCH_ROWS)
        schema = reader.schema.with_metadata({**(reader.schema.metadata or {}), **metadata})
        with pq.ParquetWriter(target, schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch.replace_schema_metadata(schema.metadata))


RunQuery = Callable[[str, list | None], pl.DataFrame]
"""``query(sql, params)``: ``sql`` run over one run's segments, visible to it as table ``s``."""


@contextmanager
def run_queries(ws: Workspace, system: str, run_id: RunIds) -> Iterator[RunQuery | None]:
    """Queries over the run's segments on one in-memory connection; None when there are none yet.

    Several queries over the same run (the Go/No-Go page asks four) share the
    connection: the segment list, the schema and each file's Parquet footer
    (``parquet_metadata_cache``) are read once, not once per query; with one
    segment per second of a run, opening the files is most of the cost. Each
    query reads only the columns and rows it names (DuckDB pushes projections
    and filters into the Parquet scan).

    Segments written before the gateway kept mismatch bodies have no ``body``
    column, those before the gateway alternated its calls no ``called_first``,
    those before it read the versions' own time no ``service_ms``/``cpu_wait_ms``,
    and hand-made ones may lack ``request_id``; a missing column reads
    as null, so every query sees the same columns.
    """
    files = [str(f) for f in segments(ws, system, run_id)]
    if not files:
        yield None
        return
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET parquet_metadata_cache = true")
        present = query_frame(con, "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [files])
        names = present["column_name"].to_list()
        extra = "".join(
            f", NULL::{kind} AS {column}"
            for column, kind in (
                ("body", "VARCHAR"),
                ("request_id", "BIGINT"),
                ("called_first", "BOOLEAN"),
                ("service_ms", "DOUBLE"),
                ("cpu_wait_ms", "DOUBLE"),
            )
            if column not in names
        )
        cte = f"WITH s AS (SELECT *{extra} FROM read_parquet(?, union_by_name = true)) "
        yield lambda sql, params=None: query_frame(con, cte + sql, [files, *(params or [])])


def query_run(
    ws: Workspace, system: str, run_id: RunIds, sql: str, params: list | None = None
) -> pl.DataFrame | None:
    """Run ``sql`` over the run's segments, visible to it as table ``s``; None when there are none yet."""
    with run_queries(ws, system, run_id) as query:
        return None if query is None else query(sql, params)


def _select_samples(source: str, *, all_columns: bool = False) -> str:
    """``SELECT`` of the judge's columns (or all) from ``source`` in time order, ``ts`` as naive UTC."""
    columns = "* EXCLUDE (ts)" if all_columns else ", ".join(f'"{c}"' for c in JUDGE_COLUMNS if c != "ts")
    return f"SELECT CAST(ts AT TIME ZONE 'UTC' AS TIMESTAMP) AS ts, {columns} FROM {source} ORDER BY ts"  # noqa: S608


def read_run_samples(
    ws: Workspace, system: str, run_id: RunIds, *, all_columns: bool = False
) -> pl.DataFrame:
    """Every sample of one run, or of a run and those it continues (empty frame when none yet);
    ``ts`` as naive UTC for the judge."""
    frame = query_run(ws, system, run_id, _select_samples("s", all_columns=all_columns))
    return frame if frame is not None else pl.DataFrame(schema=CANONICAL)


class RunTail:
    """The samples of one run that appeared since the last call, for a watcher that asks once a second.

    Segments are immutable once they have their name (the gateway writes a
    temp name, then renames), so each is read once, when it first appears.
    Re-reading the whole run every tick grew with the run (O(n²) over a long
    run: at the seed's 24 h it would reread millions of rows a minute), and so
    did keeping what was read: the caller folds each batch into running totals
    (:class:`engine.judge.running.RunningTriggers`) and lets it go.

    :meth:`compact_read` merges the segments already read while the run goes
    on, so a day-long run never piles up 86 400 files. A compacted file whose
    segments were all read brings nothing new; one met for the first time (a
    tail started on a compacted run) is read and its segments count as read.
    """

    def __init__(self, ws: Workspace, system: str, run_id: str):
        self.ws, self.system, self.run_id = ws, system, run_id
        self.folder = run_folder(ws, system, run_id)
        self._seen: set[str] = set()
        self._segments: list[Path] = []  # read and not yet compacted

    def read_new(self) -> pl.DataFrame:
        """The rows of the segments that appeared since the last call (an empty frame when none did)."""
        present = sorted(f for f in self.folder.glob("part-*.parquet") if f.name not in self._seen)
        fresh: list[Path] = []
        for f in (f for f in present if f.name.startswith(COMPACTED_PREFIX)):
            covers = _covers(f)
            if not covers <= self._seen:
                if covers & self._seen:
                    raise RuntimeError(f"{f}: compacted from segments of which only some were read")
                fresh.append(f)
            self._seen |= covers | {f.name}
        plain = [f for f in present if f.name not in self._seen]
        self._seen.update(f.name for f in plain)
        self._segments += plain
        fresh += plain
        if not fresh:
            return pl.DataFrame(schema=CANONICAL)
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            part = query_frame(
                con, _select_samples("read_parquet(?, union_by_name = true)"), [[str(f) for f in fresh]]
            )
        return part.cast(dict(CANONICAL))

    def compact_read(self, min_segments: int) -> Compaction | None:
        """Merge the segments read so far into one file once there are ``min_segments`` of them."""
        if len(self._segments) < min_segments:
            return None
        done = compact_run(self.ws, self.system, self.run_id, only=self._segments)
        self._segments = []
        return done


def samples_version(ws: Workspace, system: str | None = None) -> tuple[tuple[str, int, int], ...]:
    """A token that changes whenever a segment is added or removed (all runs, or ``system``'s).

    Per run folder: its name, how many entries it holds and its modification
    time; one directory listing per run, no file opened. The count catches a
    segment written in the same clock tick as the one before (a folder's mtime
    may not move between them); the gateway writes a temp name first, so even a
    replaced segment passes through a different count.
    """
    if system is None:
        folders = ws.samples_dir.glob("system=*/run=*")
    else:
        safe_child(ws.samples_dir, system)
        folders = (ws.samples_dir / f"system={system}").glob("run=*")
    out = []
    for folder in sorted(folders):
        with os.scandir(folder) as entries:
            count = sum(1 for _ in entries)
        out.append((f"{folder.parent.name}/{folder.name}", count, folder.stat().st_mtime_ns))
    return tuple(out)
