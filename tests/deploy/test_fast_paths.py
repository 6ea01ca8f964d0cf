"""The gateway's request path reads and writes as the general code does (issue 19 point 3's fast paths).

Each fast path (the C JSON scanner alone, the one-pass HTTP head, the fixed
answer head) is checked against the general code it stands in for.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.deploy import http
from engine.deploy.gateway import SampleBuffer, _is_json, _json

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def outcome(read, body: bytes) -> tuple[str, str]:
    try:
        return "value", repr(read(body))
    except ValueError as exc:
        return "error", type(exc).__name__


CASES = [
    b'{"a":1}',
    b' {"a": [1, 2, 3]} \n',
    b"",
    b"   ",
    b'{"a":1} x',
    b'\xef\xbb\xbf{"a":1}',  # a UTF-8 BOM: json.loads reads it, the fast path leaves it to json.loads
    b"NaN",
    b"nan",
    b'{"a":"\x01"}',
    b"[1,2",
    b"1 2",
    b'"\xc3\xa9"',
    b"\xff\xfe{\x00}\x00",  # UTF-16
    b'{"a":1}\x00',
    b"\x80garbage",
]


@pytest.mark.parametrize("body", CASES)
def test_the_json_fast_path_reads_what_json_loads_reads(body: bytes) -> None:
    assert outcome(_json, body) == outcome(json.loads, body)
    assert _is_json(body) == (outcome(json.loads, body)[0] == "value")


@given(JSON_VALUES, st.sampled_from(["", " ", "\n", " x", "]"]), st.sampled_from(["", " \t"]))
def test_the_json_fast_path_on_generated_documents(value: object, tail: str, head: str) -> None:
    body = (head + json.dumps(value) + tail).encode()
    assert outcome(_json, body) == outcome(json.loads, body)


@given(st.binary(max_size=40))
def test_the_json_fast_path_on_any_bytes(body: bytes) -> None:
    assert outcome(_json, body) == outcome(json.loads, body)


def test_a_head_ends_at_its_first_empty_line_crlf_or_bare() -> None:
    crlf = bytearray(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}NEXT")
    assert http._message(crlf) == ("POST /x HTTP/1.1", {"host": "a", "content-length": "2"}, b"{}", 50)
    bare = bytearray(b"POST /x HTTP/1.1\nContent-Length: 2\n\n{}")
    assert http._message(bare) == ("POST /x HTTP/1.1", {"content-length": "2"}, b"{}", len(bare))
    mixed = bytearray(b"HTTP/1.1 200 OK\nserver-timing:  app;dur=1 \n\r\n")
    assert http._message(mixed) == ("HTTP/1.1 200 OK", {"server-timing": "app;dur=1"}, b"", len(mixed))
    assert http._message(bytearray(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n")) is None  # head not whole
    assert http._message(bytearray(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\n{}")) is None  # body not
    with pytest.raises(http.HttpError):
        http._message(bytearray(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
    with pytest.raises(http.HttpError):
        http._message(bytearray(b"x" * (http.MAX_HEAD_BYTES + 1)))
    with pytest.raises(ValueError):
        http._message(bytearray(b"POST /x HTTP/1.1\r\nContent-Length: two\r\n\r\n"))


@pytest.mark.parametrize("status", [200, 404, 409, 502, 500])
@pytest.mark.parametrize("keep_alive", [True, False])
def test_the_answer_head_is_the_same_on_the_fast_path(status: int, keep_alive: bool) -> None:
    body = b'{"ok": true}'
    general = (
        f"HTTP/1.1 {status} {http.REASONS.get(status, 'Status')}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode() + body
    assert http._encode_response(http.Response(status, body), keep_alive) == general
    with_header = http._encode_response(http.Response(status, body, headers={"x-a": "1"}), keep_alive)
    assert with_header == general.replace(b"\r\nconnection:", b"\r\nx-a: 1\r\nconnection:")


def test_a_row_s_time_is_written_to_the_microsecond(tmp_path: Path) -> None:
    """Rows carry ``ts`` as integer microseconds (the request path's time.time_ns() // 1000); a row added
    by name may give a datetime. Either way the segment's ts is the same instant, as Datetime(us, UTC)."""
    aware = dt.datetime(2026, 12, 5, 7, 30, 1, 123456, tzinfo=dt.UTC)
    other_zone = aware.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    naive = aware.replace(tzinfo=None)  # taken as UTC
    buffer = SampleBuffer(tmp_path)
    for ts in (aware, other_zone, naive, None):
        buffer.add("s", "r", ts=ts, request_id=1)
    before = time.time_ns() // 1000
    buffer.add("s", "r", ts=before, request_id=2)
    assert buffer.flush() == 5
    frame = pl.read_parquet(tmp_path / "system=s" / "run=r" / "*.parquet")
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert frame["ts"].to_list()[:4] == [aware, aware, aware, None]
    assert frame["ts"][4] == dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=before)
