"""Sample frames: one row per request per version, from a parallel run or a user's own file.

Columns: ``ts`` (timestamp), ``version`` (``old``/``new``), ``latency_ms``
(float), ``ok`` (bool), optional ``endpoint`` (str), ``match`` (bool, on
new rows: the response equalled old's) and ``request_id`` (the same value on
a mirrored request's old and new rows: the judge then compares each request
with itself; integers, or any text, which is numbered), ``called_first``
(on a mirrored request: this version was called before the other one) and
``service_ms`` (the version's own time on the request, as its ``Server-Timing``
header reports it, less the time its thread waited for a CPU; ``cpu_wait_ms``
is that wait): when every ok request of both versions carries it, the latency
criteria judge it instead of the round trip ``latency_ms``
(:mod:`engine.judge.verdict`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from engine.errors import InputError

REQUIRED = {"ts": "timestamp", "version": "'old' or 'new'", "latency_ms": "number", "ok": "boolean"}
CANONICAL: dict[str, pl.DataType] = {
    "ts": pl.Datetime("us"),
    "version": pl.String(),
    "latency_ms": pl.Float64(),
    "ok": pl.Boolean(),
    "endpoint": pl.String(),
    "match": pl.Boolean(),
    "request_id": pl.Int64(),
    "called_first": pl.Boolean(),
    "service_ms": pl.Float64(),
    "cpu_wait_ms": pl.Float64(),
}


def read_samples_file(path: str | Path) -> pl.DataFrame:
    """Read and check a Parquet or CSV samples file; problems raise InputError naming column and row."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "<file>", "a Parquet or CSV samples file", "no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True, infer_schema_length=10_000)
        else:
            raise InputError(path, "<file>", "a .parquet or .csv file", f"'{suffix or 'no suffix'}'")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
        where = _first_undecodable(path) if suffix == ".csv" else None
        raise InputError(
            path,
            where or "<file>",
            f"a readable {suffix[1:]} file",
            (str(exc).splitlines() or ["?"])[0][:200],
        ) from exc
    return normalise_samples(frame, source=str(path))


def _first_undecodable(path: Path) -> str | None:
    """``line L (byte N)`` of the first byte of a CSV file that is not UTF-8, or None."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return f"line {line} (byte {exc.start})"
    return None


def normalise_samples(frame: pl.DataFrame, source: str = "samples") -> pl.DataFrame:
    """Cast to the canonical schema; InputError for a missing column or a bad value."""
    for column, expected in REQUIRED.items():
        if column not in frame.columns:
            raise InputError(source, f"column '{column}'", f"a column '{column}' ({expected})", "missing")
    n = frame.height
    if "request_id" in frame.columns and frame["request_id"].dtype == pl.String:  # ids as text: number them
        ids = frame["request_id"]
        frame = frame.with_columns(pl.when(ids.is_not_null()).then(ids.rank("dense")).alias("request_id"))
    out = pl.DataFrame(
        [
            _cast(frame[c], source, dtype) if c in frame.columns else pl.Series(c, [None] * n, dtype=dtype)
            for c, dtype in CANONICAL.items()
        ]
    ).with_columns(pl.col("endpoint").fill_null(""))
    indexed = out.with_row_index("row")
    bad = indexed.filter(~pl.col("version").is_in(["old", "new"]))
    if bad.height:
        raise InputError(
            source, f"row {bad['row'][0] + 1}, column 'version'", "'old' or 'new'", repr(bad["version"][0])
        )
    for column in ("ts", "latency_ms", "ok"):
        nulls = indexed.filter(pl.col(column).is_null())
        if nulls.height:
            raise InputError(
                source, f"row {nulls['row'][0] + 1}, column '{column}'", REQUIRED[column], "empty"
            )
    for column in ("latency_ms", "service_ms", "cpu_wait_ms"):  # the last two may be empty, never negative
        negative = indexed.filter((pl.col(column) < 0) | ~pl.col(column).is_finite())
        if negative.height:
            raise InputError(
                source,
                f"row {negative['row'][0] + 1}, column '{column}'",
                "a finite time in ms >= 0" + ("" if column == "latency_ms" else ", or empty"),
                repr(negative[column][0]),
            )
    return out


_TRUE, _FALSE = ["true", "1", "yes"], ["false", "0", "no"]


def _cast(series: pl.Series, source: str, dtype: pl.DataType) -> pl.Series:
    """Cast one column, naming the first row that does not fit."""
    column = series.name
    if dtype == pl.Boolean and series.dtype == pl.String:
        lowered = series.str.to_lowercase().str.strip_chars()
        casted = pl.when(lowered.is_in(_TRUE)).then(True).when(lowered.is_in(_FALSE)).then(False)
        casted = pl.select(casted.otherwise(None).alias(column)).to_series()
    elif isinstance(dtype, pl.Datetime) and series.dtype == pl.String:
        casted = series.str.to_datetime(strict=False)
    else:
        casted = series.cast(dtype, strict=False)
    if isinstance(casted.dtype, pl.Datetime):
        if casted.dtype.time_zone:
            casted = casted.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        casted = casted.cast(pl.Datetime("us"))
    failed = casted.is_null() & series.is_not_null()
    if failed.any():
        row = int(failed.arg_max() or 0)
        raise InputError(
            source, f"row {row + 1}, column '{column}'", _describe(dtype), repr(series[row])[:60]
        )
    return casted.alias(column)


def _describe(dtype: pl.DataType) -> str:
    return {pl.Boolean: "true or false", pl.Float64: "a number", pl.String: "text"}.get(dtype, "a timestamp")
