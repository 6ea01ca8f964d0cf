"""Reading a run's samples: the whole run at once, and the watcher's tail that reads each segment once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from engine.deploy.gateway import SAMPLE_COLUMNS, write_segment
from engine.store.samples import RunTail, all_segments, compact_run, read_run_samples, run_folder, segments
from engine.workspace import Workspace

SYSTEM, RUN = "hello_world_api", "parallel-test"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def segment(ws: Workspace, index: int, rows: int = 50) -> Path:
    """``rows`` requests answered by both versions in second ``index`` of the run."""
    n = rows * 2
    frame = pl.DataFrame(
        {
            "ts": [START + dt.timedelta(seconds=index, milliseconds=i) for i in range(n)],
            "run_id": [RUN] * n,
            "request_id": [index * 1000 + i // 2 for i in range(n)],
            "endpoint": ["hello"] * n,
            "version": ["old", "new"] * rows,
            "slot": ["blue", "green"] * rows,
            "primary": [True, False] * rows,
            "status": [200] * n,
            "ok": [True] * n,
            "latency_ms": [1.0 + (i % 7) / 10 for i in range(n)],
            "digest": ["d"] * n,
            "match": [None, True] * rows,
            "body": [None] * n,
            "called_first": [True, False] * rows,
            "service_ms": [None] * n,
            "cpu_wait_ms": [None] * n,
        },
        schema=SAMPLE_COLUMNS,
    )
    folder = run_folder(ws, SYSTEM, RUN)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-1-{index:06d}.parquet"
    write_segment(frame, path)
    return path


def test_the_tail_gives_each_new_segment_once_and_together_they_are_the_run(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    tail = RunTail(ws, SYSTEM, RUN)
    assert tail.read_new().is_empty()
    parts = []
    for index in range(4):
        segment(ws, index)
        parts.append(tail.read_new())
        assert parts[-1].height == 100
        assert tail.read_new().is_empty()  # nothing new since
    assert_frame_equal(pl.concat(parts), read_run_samples(ws, SYSTEM, RUN))


def test_the_tail_reads_each_segment_once(tmp_path: Path) -> None:
    """A segment already read is not opened again: removing it afterwards changes nothing the tail returns."""
    ws = Workspace(tmp_path / "ws")
    tail = RunTail(ws, SYSTEM, RUN)
    first = segment(ws, 0)
    assert tail.read_new().height == 100
    first.unlink()
    segment(ws, 1)
    assert tail.read_new().height == 100  # only the second segment
    assert read_run_samples(ws, SYSTEM, RUN).height == 100


def test_compacting_while_the_run_goes_on_counts_no_row_twice(tmp_path: Path) -> None:
    """The watcher merges what it has read mid-run; the merged file is not read again, and segments
    written afterwards are, so the batches still add up to the run exactly."""
    ws = Workspace(tmp_path / "ws")
    tail = RunTail(ws, SYSTEM, RUN)
    parts = []
    for index in range(3):
        segment(ws, index)
        parts.append(tail.read_new())
    assert tail.compact_read(4) is None  # below the threshold: nothing merged
    done = tail.compact_read(3)
    assert done is not None and (done.files_before, done.files_after, done.rows) == (3, 1, 300)
    segment(ws, 3)  # written while the merge was published
    parts.append(tail.read_new())
    assert parts[-1].height == 100
    assert tail.read_new().is_empty()
    names = sorted(p.name for p in run_folder(ws, SYSTEM, RUN).iterdir())
    assert len(names) == 2 and names[0].startswith("part-1-") and names[1].startswith("part-compacted-")
    assert_frame_equal(pl.concat(parts), read_run_samples(ws, SYSTEM, RUN))
    compact_run(ws, SYSTEM, RUN)  # the end of the run merges the merged file and the rest
    assert read_run_samples(ws, SYSTEM, RUN).height == 400


def test_a_tail_started_on_a_compacted_run_reads_it_once(tmp_path: Path) -> None:
    """A merged file met for the first time is read, and the leftovers it covers (a crash before the
    unlinks) are not read beside it."""
    ws = Workspace(tmp_path / "ws")
    kept = [segment(ws, index) for index in range(3)]
    copies = {p: p.read_bytes() for p in kept}
    compact_run(ws, SYSTEM, RUN)
    for path, data in copies.items():
        path.write_bytes(data)
    tail = RunTail(ws, SYSTEM, RUN)
    assert tail.read_new().height == 300
    segment(ws, 3)
    assert tail.read_new().height == 100


def test_compaction_merges_a_finished_run_into_one_file_and_reads_the_same(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    for index in range(5):
        segment(ws, index)
    before = read_run_samples(ws, SYSTEM, RUN, all_columns=True)
    done = compact_run(ws, SYSTEM, RUN)
    assert (done.files_before, done.files_after, done.rows) == (5, 1, 500)
    files = list(run_folder(ws, SYSTEM, RUN).iterdir())
    assert [f.name.startswith("part-compacted-") for f in files] == [True]
    assert_frame_equal(read_run_samples(ws, SYSTEM, RUN, all_columns=True), before)
    assert compact_run(ws, SYSTEM, RUN).files_after == 1  # again: nothing to do


def test_a_crash_after_the_switch_leaves_covered_segments_that_nothing_reads(tmp_path: Path) -> None:
    """Killed between publishing the merged file and removing the segments: no row counted twice,
    in the run or across runs (the downtime KPI), and the next compaction clears the leftovers."""
    ws = Workspace(tmp_path / "ws")
    kept = [segment(ws, index) for index in range(3)]
    copies = {p: p.read_bytes() for p in kept}
    compact_run(ws, SYSTEM, RUN)
    for path, data in copies.items():  # as if the process died before its unlinks
        path.write_bytes(data)
    assert read_run_samples(ws, SYSTEM, RUN).height == 300
    assert len(all_segments(ws.samples_dir)) == 1
    assert len(segments(ws, SYSTEM, RUN)) == 1
    compact_run(ws, SYSTEM, RUN)
    assert read_run_samples(ws, SYSTEM, RUN).height == 300
    names = sorted(p.name for p in run_folder(ws, SYSTEM, RUN).iterdir())
    assert len(names) == 1 or all(n.startswith("part-compacted-") for n in names)
