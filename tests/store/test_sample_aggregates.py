"""The samples' stored aggregates give the pages and KPIs the figures the raw rows give, crash or not.

Every check compares with the SQL the pages ran over the raw rows before the
aggregates existed (kept here as the reference), on runs written in several
styles, and checks where the figures came from (stored shares, not rows), so
a reader that silently went back to the raw rows fails too.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.deploy.gateway import SAMPLE_COLUMNS, write_segment
from engine.parallel import compare
from engine.risks.optimise import load_by_version
from engine.store import aggregates, connect
from engine.store.db import query_frame
from engine.store.samples import RunTail, compact_run, run_folder, segments
from engine.store.schema import migrate
from engine.workspace import Workspace

SYSTEM, RUN = "hello_world_api", "parallel-agg"
START = dt.datetime(2026, 3, 1, 9, 0, 0, tzinfo=dt.UTC)
BUCKET_S = 10.0

# --------------------------------------------------------------------------- the raw reference

RAW_SUMMARY = """
    SELECT version, requests, error_rate, q[1] AS p50, q[2] AS p95, q[3] AS p99, mismatch_rate FROM (
        SELECT version, count(*) AS requests, avg(CASE WHEN ok THEN 0 ELSE 1 END) AS error_rate,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE ok) AS q,
               avg(CASE WHEN match THEN 0 ELSE 1 END) FILTER (WHERE match IS NOT NULL) AS mismatch_rate
        FROM s GROUP BY version
    ) ORDER BY version DESC
"""
RAW_BUCKETS = """
    SELECT bucket, version, requests, errors, error_rate, throughput_rps,
           q[1] AS p50, q[2] AS p95, q[3] AS p99,
           bucket >= min(first_ts) OVER ()
               AND bucket + to_microseconds(CAST(? * 1e6 AS BIGINT)) <= max(last_ts) OVER () AS complete
    FROM (
        SELECT time_bucket(to_microseconds(CAST(? * 1e6 AS BIGINT)), ts) AS bucket, version,
               count(*) AS requests, count(*) FILTER (WHERE NOT ok) AS errors,
               avg(CASE WHEN ok THEN 0 ELSE 1 END) AS error_rate,
               count(*) FILTER (WHERE ok) / ? AS throughput_rps,
               quantile_cont(latency_ms, [0.5, 0.95, 0.99]) FILTER (WHERE ok) AS q,
               min(ts) AS first_ts, max(ts) AS last_ts
        FROM s GROUP BY ALL
    ) ORDER BY bucket, version
"""
RAW_LATENCIES = """
    SELECT version, unnest(min_by(latency_ms, hash(request_id), ?)) AS latency_ms
    FROM s WHERE ok GROUP BY version ORDER BY version
"""
RAW_MISMATCHES = """
    SELECT n.ts, n.endpoint, o.status AS old_status, n.status AS new_status,
           o.body AS old_body, n.body AS new_body
    FROM (
        SELECT request_id, ts, endpoint, status, body FROM s
        WHERE version = 'new' AND NOT match ORDER BY (body IS NULL), ts LIMIT ?
    ) n JOIN s o ON o.request_id = n.request_id AND o.version = 'old'
    ORDER BY (n.body IS NULL), n.ts
"""
RAW_DOWNTIME = """
    SELECT system, count(*)::BIGINT AS down_seconds FROM (
        SELECT system, epoch_us(ts) // 1000000 AS second, bool_or(ok) AS any_ok
        FROM read_parquet(?, hive_partitioning = true, union_by_name = true)
        WHERE "primary" AND ts <= ?
        GROUP BY ALL
    ) WHERE NOT any_ok GROUP BY system ORDER BY system
"""
RAW_LOAD = """
    SELECT v.version, v.samples, v.p50_ms, v.p95_ms,
           max(p.n) AS peak_rps, median(p.n) AS median_rps,
           max(p.n * coalesce(p.mean_ms, 0) / 1000.0) AS peak_in_flight
    FROM (
        SELECT version, count(*) AS samples,
               quantile_cont(latency_ms, 0.5) FILTER (WHERE ok) AS p50_ms,
               quantile_cont(latency_ms, 0.95) FILTER (WHERE ok) AS p95_ms
        FROM s GROUP BY version
    ) v JOIN (
        SELECT version, date_trunc('second', ts) AS second, count(*) AS n,
               avg(latency_ms) FILTER (WHERE ok) AS mean_ms
        FROM s GROUP BY ALL
    ) p USING (version)
    GROUP BY ALL ORDER BY v.version
"""


def raw(ws: Workspace, sql: str, params: list | None = None, run: str = RUN) -> pl.DataFrame:
    files = [str(f) for f in segments(ws, SYSTEM, run)]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        names = query_frame(con, "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [files])
        extra = "" if "body" in names["column_name"].to_list() else ", NULL::VARCHAR AS body"
        cte = f"WITH s AS (SELECT *{extra} FROM read_parquet(?, union_by_name = true)) "
        return query_frame(con, cte + sql, [files, *(params or [])])


def raw_downtime(ws: Workspace, as_of: dt.datetime) -> pl.DataFrame:
    files = [str(f) for f in aggregates.all_segments(ws.samples_dir)]
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        return query_frame(con, RAW_DOWNTIME, [files, as_of])


# --------------------------------------------------------------------------- runs in several styles


def pairs(first_second: int, seconds: int, rps: int, seed: int, *, outage: tuple[int, int] | None = None):
    """Mirrored requests over ``seconds`` seconds: old primary, new shadow, errors, mismatches, bodies."""
    rng = np.random.default_rng(seed)
    n = seconds * rps
    offsets = np.sort(rng.integers(first_second * 1_000_000, (first_second + seconds) * 1_000_000, n))
    ts = pl.Series(np.datetime64(START.replace(tzinfo=None), "us") + offsets.astype("timedelta64[us]"))
    ts = ts.dt.replace_time_zone("UTC")
    old_ok = rng.random(n) > 0.02
    new_ok = rng.random(n) > 0.05
    if outage is not None:  # the primary fails every request in these seconds
        old_ok &= ~((offsets >= outage[0] * 1_000_000) & (offsets < outage[1] * 1_000_000))
    match = rng.random(n) > 0.03
    kept = ~match & (rng.random(n) < 0.3)
    body = [f'{{"n": {i}}}' if k else None for i, k in enumerate(kept)]
    ids = np.arange(n) + first_second * 10_000 + seed * 1_000_000
    common = {"ts": ts, "run_id": RUN, "request_id": ids, "endpoint": rng.choice(["a", "b", "c"], n)}
    sides = [
        pl.DataFrame(
            {
                **common,
                "version": version,
                "slot": slot,
                "primary": version == "old",
                "status": np.where(ok, 200, 500).astype(np.int32),
                "ok": ok,
                "latency_ms": rng.lognormal(1.5 if version == "old" else 1.6, 0.5, n),
                "digest": "d",
                "match": pl.Series(match if version == "new" else [None] * n, dtype=pl.Boolean),
                "body": pl.Series(body, dtype=pl.String),
                "called_first": rng.random(n) < 0.5,
                "service_ms": pl.Series([None] * n, dtype=pl.Float64),
                "cpu_wait_ms": pl.Series([None] * n, dtype=pl.Float64),
            }
        )
        for version, slot, ok in (("old", "blue", old_ok), ("new", "green", new_ok))
    ]
    return pl.concat(sides).sort("ts").select(list(SAMPLE_COLUMNS)).cast(SAMPLE_COLUMNS)


def write(ws: Workspace, frame: pl.DataFrame, name: str, run: str = RUN) -> Path:
    folder = run_folder(ws, SYSTEM, run)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    write_segment(frame, path)
    return path


def one_second_segments(ws: Workspace, seconds: range, seed: int = 1, **kw) -> list[Path]:
    return [write(ws, pairs(s, 1, 40, seed + s, **kw), f"part-1-{s:06d}.parquet") for s in seconds]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws").ensure()
    with connect(ws.db_path):
        pass
    return ws


def assert_evidence_is_raw(ws: Workspace, got: compare.RunFrames, *, exact_quantiles: bool = True) -> None:
    """The page's four views equal the raw SQL's (quantiles within 0.5 % unless exact)."""
    tolerance = {} if exact_quantiles else {"check_exact": False, "rel_tol": 0.005}
    assert_frame_equal(got.summary, raw(ws, RAW_SUMMARY), **tolerance)
    assert_frame_equal(got.buckets, raw(ws, RAW_BUCKETS, [BUCKET_S] * 3), **tolerance)
    by = ["version", "latency_ms"]
    assert_frame_equal(got.latencies.sort(by), raw(ws, RAW_LATENCIES, [compare.LATENCY_SAMPLE]).sort(by))
    assert_frame_equal(got.mismatches, raw(ws, RAW_MISMATCHES, [compare.MISMATCH_LIMIT]))


def read_from(ws: Workspace) -> aggregates.Parts:
    parts = aggregates.run_parts(ws, SYSTEM, [RUN], BUCKET_S)
    assert parts is not None
    return parts


# --------------------------------------------------------------------------- finished runs: exact


def test_a_finished_run_gives_every_figure_of_its_raw_rows_from_its_aggregates(ws: Workspace) -> None:
    one_second_segments(ws, range(0, 45), outage=(20, 23))
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    parts = read_from(ws)
    assert parts.raw_files == [] and len(parts.stored_files) == 1  # nothing read from the rows
    evidence = compare.evidence(ws, SYSTEM, RUN, BUCKET_S)
    assert_evidence_is_raw(ws, evidence)
    assert evidence.mismatches.height == compare.MISMATCH_LIMIT
    seconds = aggregates.run_parts(ws, SYSTEM, [RUN], None, ("versions", "seconds"))
    assert seconds is not None
    load = load_by_version(seconds["versions"], seconds["seconds"])
    expected = raw(ws, RAW_LOAD).with_columns(pl.col("peak_rps").cast(pl.Int64))
    assert_frame_equal(load, expected, check_exact=False, rel_tol=1e-12, check_dtypes=False)


def test_downtime_from_the_aggregates_is_the_raw_rows_seconds_at_any_moment(ws: Workspace) -> None:
    """Cut anywhere, mid-second included, the per-second aggregates find the same down seconds."""
    one_second_segments(ws, range(0, 30), outage=(10, 14))
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    moments = [START + dt.timedelta(seconds=s) for s in (-1, 9.8, 10.0, 10.4, 11.999, 12.5, 13.7, 60)]
    with connect(ws.db_path) as con:
        con.execute("SET TimeZone = 'UTC'")
        for as_of in moments:
            assert_frame_equal(aggregates.down_seconds(con, ws, as_of), raw_downtime(ws, as_of))
        assert aggregates.down_seconds(con, ws, moments[-1])["down_seconds"].to_list() == [4]


def test_segments_written_in_other_styles_read_the_same(ws: Workspace) -> None:
    """Hand-written segments: no body, request_id or called_first column, rows out of time order."""
    styles = [
        pairs(0, 3, 30, 7).drop("body"),
        pairs(3, 3, 30, 8).drop("called_first").reverse(),
        pairs(6, 4, 30, 9).drop("body", "called_first"),
    ]
    run_folder(ws, SYSTEM, RUN).mkdir(parents=True)
    for i, frame in enumerate(styles):
        frame.write_parquet(run_folder(ws, SYSTEM, RUN) / f"part-hand-{i}.parquet", compression="snappy")
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    assert read_from(ws).raw_files == []
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))


# --------------------------------------------------------------------------- a run still going


def test_a_running_run_reads_its_chunks_shares_and_its_tail_raw(ws: Workspace) -> None:
    """Compacted chunks are read from their aggregates, the newest segments raw: counts and rates
    exact; a version's quantiles within 0.5 % (merged sketches), a bucket's whole ones exact."""
    tail = RunTail(ws, SYSTEM, RUN)
    for chunk in (range(0, 13), range(13, 31)):  # chunk boundaries cut buckets [10, 20) and [30, 40)
        one_second_segments(ws, chunk)
        tail.read_new()
        done = tail.compact_read(1)
        assert done is not None and done.published is not None
        aggregates.record_file(ws, SYSTEM, RUN, done.published, BUCKET_S)
    one_second_segments(ws, range(31, 36))  # the tail: not read by the watcher yet
    parts = read_from(ws)
    assert len(parts.stored_files) == 2 and len(parts.raw_files) == 5
    got = compare.evidence(ws, SYSTEM, RUN, BUCKET_S)
    expected = raw(ws, RAW_SUMMARY)
    counts = ["version", "requests", "error_rate", "mismatch_rate"]
    assert_frame_equal(got.summary.select(counts), expected.select(counts))
    for q in ("p50", "p95", "p99"):
        assert got.summary[q].to_list() == pytest.approx(expected[q].to_list(), rel=0.005)
    buckets = raw(ws, RAW_BUCKETS, [BUCKET_S] * 3)
    assert_frame_equal(got.buckets.drop("p50", "p95", "p99"), buckets.drop("p50", "p95", "p99"))
    whole = pl.col("bucket").dt.second().is_in([0, 20])  # held in one file each: exact
    assert_frame_equal(got.buckets.filter(whole), buckets.filter(whole))
    by = ["version", "latency_ms"]
    assert_frame_equal(got.latencies.sort(by), raw(ws, RAW_LATENCIES, [compare.LATENCY_SAMPLE]).sort(by))
    assert_frame_equal(got.mismatches, raw(ws, RAW_MISMATCHES, [compare.MISMATCH_LIMIT]))
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)  # the end: one file, exact again
    assert read_from(ws).raw_files == []
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))


# ----------------------------------------------------------------------- crashes between file and aggregate


def test_a_crash_after_publishing_before_the_aggregates_reads_the_new_file_raw(ws: Workspace) -> None:
    """Compacted file on disk, its aggregates never written: counted once, from its rows; the next
    pass (the run's end, or the store migration) aggregates it."""
    one_second_segments(ws, range(0, 20), outage=(5, 7))
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    one_second_segments(ws, range(20, 30), seed=50)
    compact_run(ws, SYSTEM, RUN)  # published; the process died before recording its aggregates
    parts = read_from(ws)
    assert parts.stored_files == [] and len(parts.raw_files) == 1
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))
    with connect(ws.db_path) as con:
        assert_frame_equal(
            aggregates.down_seconds(con, ws, START + dt.timedelta(hours=1)),
            raw_downtime(ws, START + dt.timedelta(hours=1)),
        )
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    assert read_from(ws).raw_files == []
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))


def test_a_crash_before_the_covered_segments_are_removed_counts_nothing_twice(ws: Workspace) -> None:
    """Aggregates written, the segments the compacted file covers still there (unlinks not done)."""
    kept = one_second_segments(ws, range(0, 25), outage=(3, 4))
    copies = {p: p.read_bytes() for p in kept}
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    for path, data in copies.items():
        path.write_bytes(data)
    parts = read_from(ws)
    assert parts.raw_files == [] and len(parts.stored_files) == 1
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))
    as_of = START + dt.timedelta(minutes=5)
    with connect(ws.db_path) as con:
        down = aggregates.down_seconds(con, ws, as_of)
    assert_frame_equal(down, raw_downtime(ws, as_of))
    assert down["down_seconds"].to_list() == [1]


def test_aggregates_of_files_that_are_not_visible_are_never_counted(ws: Workspace) -> None:
    """Aggregates left for segments a compaction replaced (or written before their file, in the
    other order) are ignored: each visible file counts once, from its aggregates or its rows."""
    segs = one_second_segments(ws, range(0, 12))
    with connect(ws.db_path) as con:  # each segment aggregated on its own, as a repair pass would
        aggregates.aggregate_run_in(con, ws, SYSTEM, RUN, BUCKET_S)
        stale = query_frame(con, "SELECT * FROM sample_versions")
    assert len(read_from(ws).stored_files) == 12
    compact_run(ws, SYSTEM, RUN)  # published, not yet aggregated: the segments' aggregates are stale
    assert not any(p.exists() for p in segs)
    with connect(ws.db_path) as con:  # and one for a file that does not exist (yet)
        con.register("stale", stale.with_columns(file=pl.lit("part-compacted-future.parquet")).to_arrow())
        con.execute("INSERT INTO sample_versions SELECT * FROM stale")
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    with connect(ws.db_path) as con:  # the stale ones are gone once the run's file is recorded
        files = con.execute("SELECT DISTINCT file FROM sample_versions").fetchall()
    assert [f for (f,) in files] == [f.name for f in segments(ws, SYSTEM, RUN)]
    assert_evidence_is_raw(ws, compare.evidence(ws, SYSTEM, RUN, BUCKET_S))


# --------------------------------------------------------------------------- the store migration


def test_the_store_migration_fills_the_aggregates_of_runs_already_on_disk(tmp_path: Path) -> None:
    """A workspace from before the aggregates (schema 4): opening it compacts its ended runs and fills
    their aggregates; a run still going is aggregated as it is, never compacted under its watcher."""
    ws = Workspace(tmp_path / "ws").ensure()
    with duckdb.connect(str(ws.db_path)) as con:
        migrate(con, target=4)
        for run, status in ((RUN, "completed"), ("parallel-live", "running")):
            con.execute(
                "INSERT INTO runs (id, system, kind, status, actor, started_at, duration_s, bucket_s, rps) "
                "VALUES (?, ?, 'parallel', ?, 'ann', now(), 60, ?, 40)",
                [run, SYSTEM, status, BUCKET_S],
            )
    one_second_segments(ws, range(0, 15), outage=(2, 4))
    for s in range(3):
        write(ws, pairs(s, 1, 20, 90 + s), f"part-1-{s:06d}.parquet", run="parallel-live")
    expected = {
        "evidence": [raw(ws, RAW_SUMMARY), raw(ws, RAW_BUCKETS, [BUCKET_S] * 3)],
        "down": raw_downtime(ws, START + dt.timedelta(hours=1)),
    }
    with connect(ws.db_path) as con:
        versions = con.execute("SELECT max(version) FROM schema_version").fetchone()
        down = aggregates.down_seconds(con, ws, START + dt.timedelta(hours=1))
    assert versions == (5,)
    assert len(segments(ws, SYSTEM, RUN)) == 1  # compacted
    assert len(segments(ws, SYSTEM, "parallel-live")) == 3  # left as it is
    assert read_from(ws).raw_files == []
    live = aggregates.run_parts(ws, SYSTEM, ["parallel-live"], BUCKET_S)
    assert live is not None and live.raw_files == []
    evidence = compare.evidence(ws, SYSTEM, RUN, BUCKET_S)
    assert_frame_equal(evidence.summary, expected["evidence"][0])
    assert_frame_equal(evidence.buckets, expected["evidence"][1])
    assert_frame_equal(down, expected["down"])


def test_a_run_with_no_samples_reads_as_none(ws: Workspace) -> None:
    assert aggregates.run_parts(ws, SYSTEM, [RUN], BUCKET_S) is None
    assert compare.evidence(ws, SYSTEM, RUN, BUCKET_S).summary.is_empty()
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)  # nothing to do, no error
    shutil.rmtree(ws.samples_dir)
    with connect(ws.db_path) as con:
        assert aggregates.down_seconds(con, ws, START).is_empty()


def test_an_aa_calibration_run_is_no_ones_downtime(ws: Workspace) -> None:
    """A calibration run serves nobody: every request of its primary failing is not downtime, whether
    its seconds are read from aggregates (a finished run) or raw (a running one)."""
    one_second_segments(ws, range(0, 10), outage=(2, 5))
    aggregates.finish_run(ws, SYSTEM, RUN, BUCKET_S)
    for run, seconds in (
        ("calibration-20260301T090000-abc123", range(20, 30)),
        ("calibration-live", range(40, 45)),
    ):
        for s in seconds:
            write(ws, pairs(s, 1, 40, 70 + s, outage=(s, s + 1)), f"part-1-{s:06d}.parquet", run=run)
    aggregates.finish_run(ws, SYSTEM, "calibration-20260301T090000-abc123", BUCKET_S)
    with connect(ws.db_path) as con:
        down = aggregates.down_seconds(con, ws, START + dt.timedelta(hours=1))
    assert down["down_seconds"].to_list() == [3]
