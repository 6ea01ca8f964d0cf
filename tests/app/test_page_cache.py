"""Cached page views (pages/_shared.cached): reused while the store is unchanged, redrawn after any write.

The pages keep what they computed across reruns and sessions (the standup's
KPIs, the Go / No-Go evidence over millions of samples); a state change, a
verdict or a new sample segment must show on the very next rerun, never the
view from before it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from engine import services
from engine.deploy.gateway import SAMPLE_COLUMNS, write_segment
from engine.state import State
from engine.store import connect
from engine.store import deployments as store
from engine.store import systems as systems_store
from engine.workspace import Workspace
from tests.app.conftest import open_page

SYSTEM = "hello_world_api"
RUN = "parallel-cache-test"


@pytest.fixture
def page_ws(ready_ws, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = ready_ws(SYSTEM)
    monkeypatch.setenv("SWITCHYARD_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SWITCHYARD_ACTOR", "lead")
    return ws


def move(ws: Workspace, *targets: State) -> None:
    """State changes as the engine records them (version bump and audit event in one transaction)."""
    with connect(ws.db_path) as con:
        for target in targets:
            systems_store.transition(con, SYSTEM, target, actor="lead", reason=f"to {target}")


def add_segment(ws: Workspace, seq: int, pairs: int, start: dt.datetime) -> None:
    """``pairs`` mirrored requests (old answers, new is 10 % faster), as one gateway segment."""
    ts = [start + dt.timedelta(milliseconds=20 * i) for i in range(pairs)]
    side = {"ts": ts, "run_id": [RUN] * pairs, "request_id": [seq * 100_000 + i for i in range(pairs)]}
    frames = [
        pl.DataFrame(
            {
                **side,
                "endpoint": ["hello"] * pairs,
                "version": [version] * pairs,
                "slot": [slot] * pairs,
                "primary": [version == "old"] * pairs,
                "status": [200] * pairs,
                "ok": [True] * pairs,
                "latency_ms": [latency + (i % 7) for i in range(pairs)],
                "digest": ["d"] * pairs,
                "match": [True if version == "new" else None] * pairs,
                "body": [None] * pairs,
                "called_first": [(i % 2 == 0) == (version == "old") for i in range(pairs)],
                "service_ms": [None] * pairs,
                "cpu_wait_ms": [None] * pairs,
            },
            schema=SAMPLE_COLUMNS,
        )
        for version, slot, latency in (("old", "blue", 10.0), ("new", "green", 9.0))
    ]
    folder = ws.samples_dir / f"system={SYSTEM}" / f"run={RUN}"
    folder.mkdir(parents=True, exist_ok=True)
    write_segment(pl.concat(frames).sort("ts"), folder / f"part-1-{seq:06d}.parquet")


def requests_shown(at: AppTest) -> int:
    summary = next(df.value for df in at.dataframe if "requests" in df.value.columns)
    return sum(int(str(n).replace(",", "")) for n in summary["requests"])  # written with units: "1,200"


def test_an_unchanged_store_is_drawn_from_the_cache_and_a_write_redraws(
    page_ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    overview = services.overview

    def counted(ws: Workspace, as_of: dt.datetime | None = None) -> services.Overview:
        calls.append(as_of)
        return overview(ws, as_of)

    counted.__name__ = "overview"
    monkeypatch.setattr(services, "overview", counted)
    first = open_page("standup.py")
    open_page("standup.py")  # another session, same store: no second computation
    open_page("timeline.py")  # the timeline draws the same view
    assert len(calls) == 1
    assert next(m for m in first.metric if m.label == "Rollbacks").value == "0"

    move(page_ws, State.GREEN_DEPLOYED, State.ROLLED_BACK)
    after = open_page("standup.py")
    assert len(calls) == 2
    assert next(m for m in after.metric if m.label == "Rollbacks").value == "1"


def test_go_no_go_shows_new_samples_a_verdict_and_a_rollback_on_the_next_rerun(page_ws: Workspace) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    move(page_ws, State.GREEN_DEPLOYED)
    with connect(page_ws.db_path) as con:
        store.create_run(con, RUN, SYSTEM, "parallel", "lead", duration_s=60, bucket_s=1, rps=50)
    move(page_ws, State.PARALLEL_RUN)
    add_segment(page_ws, 1, 300, start)
    at = open_page("go_no_go.py", system=SYSTEM)
    assert requests_shown(at) == 600
    assert "State: **parallel_run**" in " ".join(m.value for m in at.markdown)

    add_segment(page_ws, 2, 300, start + dt.timedelta(seconds=30))  # the gateway flushed again
    at.run()
    assert requests_shown(at) == 1200

    with connect(page_ws.db_path) as con:
        store.finish_run(con, RUN, "completed", sent=600, lost=0, samples=1200)
    services.judge_system(page_ws, SYSTEM, actor="lead")
    at.run()
    shown = " ".join(m.value for m in at.markdown)
    assert "State: **judged**" in shown and "Verdict:" in shown

    move(page_ws, State.ROLLED_BACK)  # what a rollback records once blue is back
    at.run()
    assert "State: **rolled_back**" in " ".join(m.value for m in at.markdown)
    assert "State: **rolled_back**" in " ".join(
        m.value for m in open_page("go_no_go.py", system=SYSTEM).markdown
    )
