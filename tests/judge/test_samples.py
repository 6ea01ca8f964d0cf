"""Reading a user's samples file: good files load, bad ones name the column and row."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine.errors import InputError
from engine.judge.samples import read_samples_file

GOOD = "ts,version,latency_ms,ok\n2025-08-01T00:00:00,old,3.5,true\n2025-08-01T00:00:00,new,3.1,false\n"


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_and_parquet_load_to_the_same_schema(tmp_path: Path) -> None:
    frame = read_samples_file(write(tmp_path, GOOD))
    assert frame.columns == [
        "ts",
        "version",
        "latency_ms",
        "ok",
        "endpoint",
        "match",
        "request_id",
        "called_first",
        "service_ms",
        "cpu_wait_ms",
    ]
    assert frame["request_id"].null_count() == 2  # optional: absent reads as null
    assert frame["ok"].to_list() == [True, False]
    frame.write_parquet(tmp_path / "s.parquet")
    assert read_samples_file(tmp_path / "s.parquet").equals(frame)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("ts,version,ok\n2025-08-01T00:00:00,old,true\n", "column 'latency_ms'"),
        (GOOD.replace(",new,", ",newer,"), "row 2, column 'version'"),
        (GOOD.replace("3.1", "fast"), "row 2, column 'latency_ms'"),
        (GOOD.replace("false", "maybe"), "row 2, column 'ok'"),
        (GOOD.replace("3.5", "-1"), "row 1, column 'latency_ms'"),
        (GOOD.replace("2025-08-01T00:00:00,new", "yesterday,new"), "row 2, column 'ts'"),
    ],
)
def test_bad_values_name_row_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_samples_file(path)
    assert info.value.location == where
    assert str(path) in str(info.value)


def test_wrong_kind_of_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.parquet or \.csv"):
        read_samples_file(write(tmp_path, GOOD, "s.txt"))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="readable parquet"):
        read_samples_file(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="no such file"):
        read_samples_file(tmp_path / "absent.csv")


def test_time_zones_are_normalised_to_utc(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "ts": pl.Series(["2025-08-01T02:00:00+02:00"]).str.to_datetime(),
            "version": ["old"],
            "latency_ms": [1.0],
            "ok": [True],
        }
    )
    frame.write_parquet(tmp_path / "tz.parquet")
    out = read_samples_file(tmp_path / "tz.parquet")
    assert str(out["ts"][0]) == "2025-08-01 00:00:00"


def test_request_ids_as_numbers_or_text_pair_the_same_rows(tmp_path: Path) -> None:
    """A mirrored request's old and new rows share an id; text ids (UUIDs) are numbered, equal text alike."""
    text = (
        "ts,version,latency_ms,ok,request_id\n"
        "2025-08-01T00:00:00,old,3.5,true,7f3a\n2025-08-01T00:00:00,new,3.1,true,7f3a\n"
        "2025-08-01T00:00:01,old,3.0,true,01bc\n2025-08-01T00:00:01,new,2.9,true,01bc\n"
    )
    ids = read_samples_file(write(tmp_path, text))["request_id"].to_list()
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    numbered = read_samples_file(write(tmp_path, text.replace("7f3a", "11").replace("01bc", "12")))
    assert numbered["request_id"].to_list() == [11, 11, 12, 12]
