"""Requests recorded from real traffic: one small Parquet file per run (``requests.parquet``) by its segments.

The gateway keeps, per system, run and endpoint, a bounded sample of the
distinct request bodies it saw (:mod:`engine.deploy.request_sample`); this
module is that sample's file: its columns, how it is written (whole or
absent: temp name, fsync, rename, as the compacted segments), how a
gateway that restarted in the middle of a run merges what it keeps with
what the one before it wrote, and how the gate reads the requests back to
replay them (:func:`replay_set`).

The file is not named ``part-*``: no sample reader, compaction or
aggregate ever takes it for a segment. It lives in the run's folder, so it
goes wherever the run's samples go (``backup-store`` includes it).

**Privacy.** Request bodies are what clients sent and may carry user data.
Recording is a policy setting (``[recorded_requests] keep_per_endpoint``; 0
turns it off for every run started after the change); a file already
written stays until someone deletes it (it is only ever read by the gate).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FILE = "requests.parquet"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
META_KEY = b"switchyard.recorded_requests"
SCHEMA = pa.schema(
    [
        ("endpoint", pa.string()),
        ("body", pa.string()),
        ("priority", pa.uint64()),
        ("first_seen", pa.timestamp("us", tz="UTC")),
        ("seen", pa.int64()),
    ]
)
"""One row per kept body: ``priority`` is its salted hash (the sample keeps the smallest), ``seen``
how many times it arrived in the run, ``first_seen`` when it first did (the replay order)."""


@dataclass
class Kept:
    """One kept body of one endpoint."""

    body: bytes
    first_seen_us: int
    seen: int = 1


@dataclass
class EndpointSample:
    """What a run kept of one endpoint: at most ``limit`` bodies by priority, and what it counted."""

    kept: dict[int, Kept] = field(default_factory=dict)
    requests: int = 0
    """Requests to the endpoint during the run (kept or not)."""
    too_large: int = 0
    """Requests whose body was over the size limit (never kept)."""


@dataclass
class RunSample:
    """Everything one run kept: per endpoint, and the requests to endpoints past the per-run limit."""

    endpoints: dict[str, EndpointSample] = field(default_factory=dict)
    other_endpoints: int = 0


def merged(base: RunSample, extra: RunSample, limit: int) -> RunSample:
    """``base`` and ``extra`` as one sample: the ``limit`` smallest priorities per endpoint, counts summed.

    The sample keeps, per endpoint, the distinct bodies with the smallest
    salted hashes; the smallest of two such samples are the smallest of the
    two runs' traffic together, so a gateway that restarted mid-run loses
    nothing by merging with what its predecessor wrote.
    """
    out = RunSample(other_endpoints=base.other_endpoints + extra.other_endpoints)
    for name in {*base.endpoints, *extra.endpoints}:
        a = base.endpoints.get(name, EndpointSample())
        b = extra.endpoints.get(name, EndpointSample())
        kept = dict(a.kept)
        for priority, entry in b.kept.items():
            if priority in kept:
                old = kept[priority]
                kept[priority] = Kept(
                    old.body, min(old.first_seen_us, entry.first_seen_us), old.seen + entry.seen
                )
            else:
                kept[priority] = entry
        smallest = sorted(kept)[:limit]
        out.endpoints[name] = EndpointSample(
            kept={p: kept[p] for p in smallest},
            requests=a.requests + b.requests,
            too_large=a.too_large + b.too_large,
        )
    return out


def _when(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def run_file(samples_dir: Path, system: str, run_id: str) -> Path:
    return samples_dir / f"system={system}" / f"run={run_id}" / FILE


def run_files(samples_dir: Path, system: str) -> dict[str, Path]:
    """The system's recorded-request files by run id."""
    found = (samples_dir / f"system={system}").glob(f"run=*/{FILE}")
    return {path.parent.name.removeprefix("run="): path for path in sorted(found)}


def write(path: Path, sample: RunSample, settings: dict[str, Any]) -> int:
    """Write ``sample`` to ``path`` whole or not at all (temp name, fsync, rename); returns the rows."""
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for endpoint, per in sorted(sample.endpoints.items()):
        for priority, entry in sorted(per.kept.items()):
            rows["endpoint"].append(endpoint)
            rows["body"].append(entry.body.decode("utf-8", errors="replace"))
            rows["priority"].append(priority)
            rows["first_seen"].append(entry.first_seen_us)
            rows["seen"].append(entry.seen)
    counts = {
        name: {"requests": per.requests, "too_large": per.too_large} for name, per in sample.endpoints.items()
    }
    meta = {"endpoints": counts, "other_endpoints": sample.other_endpoints, **settings}
    table = pa.table(rows, schema=SCHEMA).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    pq.write_table(table, temp, compression="zstd")
    with open(temp, "rb") as written:
        os.fsync(written.fileno())
    os.replace(temp, path)
    return table.num_rows


UNREADABLE = (OSError, ValueError, KeyError, TypeError)
"""What reading a damaged file raises (pyarrow's errors are ValueErrors, bad metadata Key/TypeErrors)."""


def read(path: Path) -> RunSample:
    """The sample a file holds (empty when there is no file); a damaged one raises :data:`UNREADABLE`."""
    if not path.is_file():
        return RunSample()
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(META_KEY, b"{}"))
    sample = RunSample(other_endpoints=int(meta.get("other_endpoints", 0)))
    for name, counts in meta.get("endpoints", {}).items():
        sample.endpoints[name] = EndpointSample(
            requests=int(counts["requests"]), too_large=int(counts["too_large"])
        )
    for row in table.to_pylist():
        per = sample.endpoints.setdefault(row["endpoint"], EndpointSample())
        first_us = (row["first_seen"] - EPOCH) // dt.timedelta(microseconds=1)
        per.kept[int(row["priority"])] = Kept(row["body"].encode("utf-8"), first_us, int(row["seen"]))
    return sample


# --------------------------------------------------------------------------- read back by the gate


@dataclass(frozen=True)
class RecordedRequest:
    """A request a client sent through the gateway during a run, as the gate replays it."""

    endpoint: str
    message: dict[str, Any]
    run_id: str
    first_seen: dt.datetime
    seen: int

    def origin(self) -> dict[str, Any]:
        """Where it came from, as the gate's evidence shows it."""
        return {"run_id": self.run_id, "first_seen": self.first_seen.isoformat(), "seen": self.seen}


@dataclass
class ReplaySet:
    """What the gate replays of a system's recorded traffic, and what it left out and why."""

    requests: list[RecordedRequest] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    """Runs with recorded requests, oldest first."""
    not_a_message: int = 0
    """Bodies that are not a JSON object (no message the systems take)."""
    unreadable: list[str] = field(default_factory=list)
    """Runs whose file could not be read (damaged): left out, the others replayed."""
    not_served: int = 0
    """Requests to an endpoint the system does not serve (the gate compares the endpoints it declares)."""
    over_limit: int = 0
    """Distinct requests beyond the per-endpoint replay limit (older runs' first)."""

    def summary(self) -> dict[str, Any]:
        """What the gate's audit event keeps: the runs replayed from, and what was left out and why."""
        return {
            "sent": len(self.requests),
            "runs": sorted({r.run_id for r in self.requests}),
            "unreadable_runs": self.unreadable,
            "not_a_message": self.not_a_message,
            "not_served": self.not_served,
            "over_limit": self.over_limit,
        }


def canonical(endpoint: str, message: Any) -> str:
    """The identity of a request: endpoint and JSON with sorted keys (as the gateway compares answers)."""
    return endpoint + " " + json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def replay_set(
    samples_dir: Path,
    system: str,
    per_endpoint: int,
    *,
    endpoints: Iterable[str] | None = None,
    skip: Iterable[str] = (),
) -> ReplaySet:
    """The system's recorded requests to replay: distinct, at most ``per_endpoint`` each, in recorded order.

    Newest runs are taken first (today's clients matter most), a request
    already taken from a newer run or named in ``skip`` (:func:`canonical`
    keys of requests the gate sends anyway) is not sent twice; the result
    is in the order the requests first arrived, oldest run first, so a
    stateful system meets them in the order it met them in the runs.
    ``endpoints``: the ones the system serves (others are counted, not sent).
    """
    served = set(endpoints) if endpoints is not None else None
    runs = []
    unreadable = []
    for run_id, path in run_files(samples_dir, system).items():
        try:
            sample = read(path)
        except UNREADABLE:
            unreadable.append(run_id)
            continue
        rows = [
            (entry.first_seen_us, name, entry)
            for name, per in sample.endpoints.items()
            for entry in per.kept.values()
        ]
        if rows:
            runs.append((min(r[0] for r in rows), run_id, sorted(rows, key=lambda r: r[:2])))
    runs.sort(key=lambda r: r[0])
    out = ReplaySet(runs=[run_id for _, run_id, _ in runs], unreadable=unreadable)
    seen, taken = set(skip), {}
    chosen: list[tuple[int, int, RecordedRequest]] = []
    for order, (_, run_id, rows) in reversed(list(enumerate(runs))):
        for first_us, name, entry in rows:
            if served is not None and name not in served:
                out.not_served += 1
                continue
            try:
                message = json.loads(entry.body)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                out.not_a_message += 1
                continue
            key = canonical(name, message)
            if key in seen:
                continue
            seen.add(key)
            if taken.get(name, 0) >= per_endpoint:
                out.over_limit += 1
                continue
            taken[name] = taken.get(name, 0) + 1
            when = _when(first_us)
            chosen.append((order, first_us, RecordedRequest(name, message, run_id, when, entry.seen)))
    out.requests = [r for _, _, r in sorted(chosen, key=lambda c: c[:2])]
    return out


# --------------------------------------------------------------------------- what is kept, and forgetting it


def overview(samples_dir: Path, system: str) -> list[dict[str, Any]]:
    """Per run and endpoint: bodies kept (and bytes), requests seen, too large; a damaged file: one row."""
    rows: list[dict[str, Any]] = []
    for run_id, path in run_files(samples_dir, system).items():
        try:
            sample = read(path)
        except UNREADABLE:
            rows.append({"run_id": run_id, "endpoint": None, "kept": None, "damaged": True})
            continue
        for endpoint, per in sorted(sample.endpoints.items()):
            stamps = [k.first_seen_us for k in per.kept.values()]
            rows.append(
                {
                    "run_id": run_id,
                    "endpoint": endpoint,
                    "kept": len(per.kept),
                    "kept_bytes": sum(len(k.body) for k in per.kept.values()),
                    "requests": per.requests,
                    "too_large": per.too_large,
                    "first_kept": _when(min(stamps)) if stamps else None,
                    "damaged": False,
                }
            )
    return rows


def forget(samples_dir: Path, system: str, *, recording: set[str]) -> tuple[list[str], int]:
    """Delete the system's recorded requests, except of runs still ``recording``; returns (runs, bodies).

    A run the gateway still records is left alone: the gateway would write its
    sample again at its next flush (it keeps it in memory until the run ends).
    """
    removed, bodies = [], 0
    for run_id, path in run_files(samples_dir, system).items():
        if run_id in recording:
            continue
        try:
            bodies += sum(len(per.kept) for per in read(path).endpoints.values())
        except UNREADABLE:
            pass  # damaged: deleted all the same
        path.unlink(missing_ok=True)
        removed.append(run_id)
    return removed, bodies
