"""Soak (issue 7 point 7), shortened for CI: a parallel run at a steady high rate, counted end to end.

The full five minutes at the machine's sustained rate is ``python -m bench.soak`` (figures in the issue
note); here the same driver runs for ``SWITCHYARD_SOAK_S`` seconds (20 by default) at
``SWITCHYARD_SOAK_RPS`` (200 by default, which 2 shared cores deliver in full). Every request the client
sent must be answered, counted once by the gateway on each slot (blue answers, green is mirrored), and
stored once per version in the run's segments; the run row must agree; and no process may grow.

The driver runs in a fresh process of its own: under pytest-xdist the worker that runs this test has
already run hundreds of others, and what they left (objects, caches) would be charged to the driver.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from bench.soak import SoakFigures, soak
from engine import services
from engine.judge.policy import load_policy
from engine.parallel import run as run_module
from engine.store import recorded_requests
from engine.store.samples import COMPACTED_PREFIX, run_folder
from engine.workspace import Workspace

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SWITCHYARD_SOAK_S", "20"))
RPS = float(os.environ.get("SWITCHYARD_SOAK_RPS", "200"))
SERVICE_GROWTH_MIB = 2.0
"""Gateway, blue and green hold no per-request state. Measured here: +0.1 to +0.4 MiB; a gateway that
keeps 1 KiB per request (tried) shows +3.3 MiB between the first and last fifth of a 20 s soak."""
DRIVER_BLOCKS_PER_REQUEST = 2.0
"""The driver keeps counters and fixed-size latency sketches for the trigger checks
(engine.judge.running), not the samples: what it could keep per request is Python objects, so its
growth is counted in Python memory blocks (sys.getallocatedblocks), not its resident set. Measured here
on 20 s soaks at 200 req/s: +0.30 blocks per request sent (twice), and +11.47 with the rows it reads
kept again (the bug of the first soak, +50.7 MiB over 5 minutes at 800 req/s). Its resident set
(~260-360 MiB with DuckDB, polars and their thread pools) moved by -1.8 to +6.5 MiB keeping nothing and
by +4.3 MiB keeping every row: too noisy to tell the two apart, so it is printed, not asserted."""


def _soak_in_this_process(ws: Workspace, name: str) -> SoakFigures:
    """The soak as the driver process runs it (called in a fresh spawned process)."""
    # merge the segments read every 5 s rather than every 10 min, so the counts below also prove the
    # mid-run compaction loses and doubles nothing
    run_module.COMPACT_EVERY = 5
    return soak(ws, name, seconds=SECONDS, rps=RPS, actor="lead")


def test_a_steady_high_rate_loses_nothing_and_grows_nothing(ready_ws) -> None:
    name = "hello_world_api"
    ws = ready_ws(name)  # stops every process afterwards
    services.deploy(ws, name, actor="lead")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as driver:
        figures = driver.submit(_soak_in_this_process, ws, name).result()
    print("\n" + "\n".join(figures.lines()))

    run = figures.run
    assert run["status"] == "completed"
    assert run["lost"] == 0 and run["failed"] == 0 and run["ok"] == run["sent"]
    assert run["sent"] >= 0.97 * RPS * SECONDS, "the offered rate was not delivered"
    assert figures.gateway == {"blue": run["sent"], "green": run["sent"]}  # each request once per slot
    assert figures.samples == {"old": run["sent"], "new": run["sent"]}  # each answer stored once
    assert run["samples"] == 2 * run["sent"]
    folder = run_folder(ws, name, run["run_id"])
    files = list(folder.glob("part-*"))  # the finished run was compacted
    assert len(files) == 1 and files[0].name.startswith(COMPACTED_PREFIX), files
    kept = recorded_requests.read(folder / recorded_requests.FILE)  # request bodies kept for the gate
    assert sum(e.requests for e in kept.endpoints.values()) == run["sent"]
    assert all(
        0 < len(e.kept) <= load_policy().recorded_requests.keep_per_endpoint for e in kept.endpoints.values()
    )
    for process in ("gateway", "blue", "green"):
        assert figures.memory[process]["growth_mib"] <= SERVICE_GROWTH_MIB, figures.lines()
    assert figures.driver_blocks["growth"] <= DRIVER_BLOCKS_PER_REQUEST * run["sent"], figures.lines()
