"""A samples frame as the arrays the judge computes on: each version's requests, and mirrored pairs.

The gateway gives both answers to one mirrored request the same
``request_id``. Matched on it, the judge can compare each request with
itself: whatever slowed both versions at once (load, the machine, the
request's own size) cancels in the per-request ratio.

A frame is judged as paired when most of its requests have both answers; a
canary step (each request sent to one version) or a file without ids is
judged as two independent samples instead.

Everything here is numpy on whole columns: a million requests per side are
matched by placing each side's row numbers at its ids (the gateway's ids are
a counter, text ids are numbered densely), with a hash join only for ids
too sparse or repeated for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

PAIRED_SHARE = 0.5
"""Pairs must be at least this share of the larger version's requests to judge as paired."""
DENSE = 4
"""Ids spanning at most this many times the row count are matched by placement, not by hashing."""


@dataclass(frozen=True)
class Side:
    """One version's requests in time order (numpy arrays of equal length)."""

    ok: np.ndarray
    ms: np.ndarray
    seconds: np.ndarray
    endpoint: np.ndarray
    request_id: np.ndarray | None
    """Ids as int64, -1 where the row had none; None when no row had one."""
    first: np.ndarray | None = None
    """Whether this version was called first for its request (None: not recorded)."""
    own_ms: np.ndarray | None = None
    """The version's own time per request (``service_ms``, NaN where not reported); None: no row has it."""

    @property
    def size(self) -> int:
        return int(self.ok.size)

    def ok_only(self) -> Side:
        keep = self.ok
        ids = None if self.request_id is None else self.request_id[keep]
        first = None if self.first is None else self.first[keep]
        own = None if self.own_ms is None else self.own_ms[keep]
        return Side(self.ok[keep], self.ms[keep], self.seconds[keep], self.endpoint[keep], ids, first, own)


def _seconds(ts: pl.Series) -> np.ndarray:
    micros = ts.dt.epoch("us").to_numpy()
    return (micros - micros.min()) / 1e6 if micros.size else micros.astype(np.float64)


def _endpoints(endpoint: pl.Series) -> tuple[np.ndarray, list[str]]:
    names = endpoint.fill_null("").unique().sort().to_list()
    if len(names) <= 1:
        return np.zeros(endpoint.len(), dtype=np.int32), names or [""]
    return endpoint.fill_null("").cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int32), names


def split_sides(samples: pl.DataFrame) -> tuple[Side, Side, list[str]]:
    """Old's and new's requests in time order, and the endpoint names their codes index."""
    frame = samples if samples["ts"].is_sorted() else samples.sort("ts")
    is_new = (frame["version"] == "new").to_numpy()
    endpoint, names = _endpoints(frame["endpoint"])
    ids = None
    if "request_id" in frame.columns and frame["request_id"].null_count() < frame.height:
        ids = frame["request_id"].fill_null(-1).cast(pl.Int64).to_numpy()
    columns = [frame["ok"].to_numpy(), frame["latency_ms"].to_numpy(), _seconds(frame["ts"]), endpoint]
    first = None
    if "called_first" in frame.columns and frame["called_first"].null_count() < frame.height:
        first = frame["called_first"].fill_null(False).to_numpy()
    own = None
    if "service_ms" in frame.columns and frame["service_ms"].null_count() < frame.height:
        own = frame["service_ms"].cast(pl.Float64).fill_null(np.nan).to_numpy()

    def side(mask: np.ndarray) -> Side:
        return Side(
            *(c[mask] for c in columns),
            None if ids is None else ids[mask],
            None if first is None else first[mask],
            None if own is None else own[mask],
        )

    return side(~is_new), side(is_new), names


@dataclass(frozen=True)
class Pairs:
    """Requests offered to both versions, in time order (numpy arrays of equal length).

    A side with no row for a request did not serve it: ``ok`` False and
    latency NaN.
    """

    seconds: np.ndarray
    endpoint: np.ndarray
    old_ok: np.ndarray
    new_ok: np.ndarray
    old_ms: np.ndarray
    new_ms: np.ndarray
    new_first: np.ndarray | None = None
    """New was called before old for this request (None: the order was not recorded)."""
    old_own: np.ndarray | None = None
    """Each version's own time (``service_ms``; NaN where a side has none); None when no row has it."""
    new_own: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(self.old_ok.size)


def _rows_by_id(old_ids: np.ndarray, new_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Row numbers of each id in old and in new (-1: that side has no row), ids with a row on either side.

    None when the ids are repeated within a side or too sparse to place.
    """
    ids = np.concatenate([old_ids, new_ids])
    ids = ids[ids >= 0]
    if ids.size == 0:
        return None
    low, span = int(ids.min()), int(ids.max()) - int(ids.min()) + 1
    if span > DENSE * ids.size:
        return None
    rows = []
    for side in (old_ids, new_ids):
        at = np.full(span, -1, dtype=np.int64)
        has = side >= 0
        at[side[has] - low] = np.flatnonzero(has)
        if np.count_nonzero(at >= 0) < np.count_nonzero(has):  # an id used twice
            return None
        rows.append(at)
    seen = (rows[0] >= 0) | (rows[1] >= 0)
    return rows[0][seen], rows[1][seen]


def _rows_by_join(old_ids: np.ndarray, new_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`_rows_by_id` with a hash join; a repeated id pairs its nth use in old with its nth in new."""
    frames = []
    for side in (old_ids, new_ids):
        frame = pl.DataFrame({"id": side, "row": np.arange(side.size)}).filter(pl.col("id") >= 0)
        frames.append(frame.with_columns(pl.col("id").cum_count().over("id").alias("nth")))
    joined = frames[0].join(frames[1], on=["id", "nth"], how="full", coalesce=True, suffix="_new")
    return joined["row"].fill_null(-1).to_numpy(), joined["row_new"].fill_null(-1).to_numpy()


def pair_requests(old: Side, new: Side) -> Pairs | None:
    """The two sides' requests as pairs, or None when this is not a mirrored run (module docstring)."""
    if old.request_id is None or new.request_id is None:
        return None
    if (
        old.size == new.size
        and np.array_equal(old.request_id, new.request_id)
        and (old.request_id >= 0).all()
    ):
        # the gateway's case: each pair's two rows share a timestamp, so in time order they line up
        return Pairs(
            old.seconds, old.endpoint, old.ok, new.ok, old.ms, new.ms, new.first, old.own_ms, new.own_ms
        )
    found = _rows_by_id(old.request_id, new.request_id) or _rows_by_join(old.request_id, new.request_id)
    at_old, at_new = found
    has_old, has_new = at_old >= 0, at_new >= 0
    both = int(np.count_nonzero(has_old & has_new))
    if both == 0 or both < PAIRED_SHARE * max(old.size, new.size):
        return None
    i_old, i_new = np.where(has_old, at_old, 0), np.where(has_new, at_new, 0)
    seconds = np.where(has_old, old.seconds[i_old], new.seconds[i_new])
    order = None if np.all(seconds[1:] >= seconds[:-1]) else np.argsort(seconds, kind="stable")

    def arranged(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    return Pairs(
        seconds=arranged(seconds),
        endpoint=arranged(np.where(has_old, old.endpoint[i_old], new.endpoint[i_new])),
        old_ok=arranged(has_old & old.ok[i_old]),
        new_ok=arranged(has_new & new.ok[i_new]),
        old_ms=arranged(np.where(has_old, old.ms[i_old], np.nan)),
        new_ms=arranged(np.where(has_new, new.ms[i_new], np.nan)),
        new_first=None if new.first is None else arranged(has_new & new.first[i_new]),
        old_own=None if old.own_ms is None else arranged(np.where(has_old, old.own_ms[i_old], np.nan)),
        new_own=None if new.own_ms is None else arranged(np.where(has_new, new.own_ms[i_new], np.nan)),
    )
