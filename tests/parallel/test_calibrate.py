"""A/A calibration on real processes: old mirrored to a copy of old, judged under the shipped policy.

What the judge reads between two identical versions is the measurement's own
bias and noise: its latency change (the shadow's position, after the primary,
on these busy cores) is the calibration a real run's verdict is corrected by.
The run must leave the system as it found it: same state, no extra process, no
extra route.
"""

from __future__ import annotations

import polars as pl

from engine import services
from engine.deploy import supervisor
from engine.judge.calibration import MEASURED
from engine.store import connect
from engine.store import deployments as store
from engine.store.samples import read_run_samples

NAME = "hello_world_api"


def test_an_a_a_run_of_old_against_a_copy_of_old_is_judged_and_kept(ready_ws) -> None:
    ws = ready_ws(NAME)
    state_before = services.status(ws, NAME).state
    assert services.calibration(ws, NAME) is None

    # 960 pairs offered in 12 s (was 800 in 20 s at 40 req/s): the >= 700 below holds with room for a
    # loaded machine delivering 73 % of the rate; hello_world_api serves 200 req/s in the soak test
    out = services.calibrate(ws, NAME, actor="lead", duration_s=12, rps=80)

    assert out.status == "completed" and out.summary["lost"] == 0
    # judged per request, as a real run. Its verdict is what the measurement is worth here, so it is
    # recorded, not asserted: on these 2 cores shared with other work (load 8-15) 10 tries gave
    # INCONCLUSIVE 9 times (p99, drift) and NO_GO once (a burst of slowness on one copy's p95/p99)
    assert out.verdict is not None and out.verdict.paired
    cal = out.calibration
    assert cal is not None and cal.verdict == out.verdict.verdict and cal.pairs >= 700
    latency = next(c for c in out.verdict.criteria if c.name == "latency_increase")
    assert (cal.latency_change, cal.low, cal.high) == (latency.observed, latency.ci_low, latency.ci_high)
    assert services.calibration(ws, NAME) == cal  # kept per system, with who and when
    assert cal.actor == "lead" and cal.run_id == out.run_id

    samples = read_run_samples(ws, NAME, out.run_id, all_columns=True)
    assert samples.height == 2 * out.summary["sent"]  # recorded under the system, like any run
    assert set(samples["version"]) == {"old", "new"}
    assert samples.filter(pl.col("version") == "new")["match"].all()  # the copies answer alike
    with connect(ws.db_path) as con:
        run = store.get_run(con, out.run_id)
        procs = store.live_processes(con, NAME)
        aa_route = store.get_route(con, f"{NAME}{supervisor.AA_ROUTE}")
    assert run is not None and run["kind"] == "calibration" and run["status"] == "completed"
    assert procs.is_empty() and aa_route is None  # both copies stopped, their route gone
    assert services.status(ws, NAME).state == state_before
    events = services.list_events(ws, system=NAME, limit=100)
    measured = events.filter(pl.col("action") == MEASURED)
    assert measured.height == 1 and measured["actor"][0] == "lead"
    assert "A/A" in measured["reason"][0]
