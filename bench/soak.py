"""Soak (issue 7 point 7): a parallel run at the highest rate this machine sustains, for minutes.

Run: python -m bench.soak [--seconds 300] [--rps N] [--system hello_world_api]

Everything is real and on loopback: the gateway, blue (v1) and green (v2) as
processes, the workload driving the gateway open loop, samples written as
Parquet segments by the gateway, the triggers checked every second. Without
``--rps`` it first finds the rate: short runs at rising rates, keeping the
highest one that was delivered in full (at least 97 % of the offered rate
sent, nothing lost, no trigger fired).

It prints, and asserts nothing (``tests/reliability/test_soak.py`` asserts on
a short soak in CI):

* counts end to end: requests the client sent, answered and lost; what the
  gateway counted per slot (blue answered, green mirrored); old and new
  samples in the run's segments; what the run row recorded;
* memory: each process's resident set (gateway, blue, green, and this
  driver) sampled every second; its median over the first fifth of the soak
  (after a warm-up) against the median over the last fifth. For the driver
  also the Python objects it holds (``sys.getallocatedblocks``), the same way:
  what the driver could keep per request (rows, answers) is Python objects,
  counted exactly, while its resident set (~360 MiB with DuckDB, polars and
  their thread pools) moves by a few MiB as native allocators settle (seen
  here: -1.8 to +6.5 MiB over 20 s soaks that kept nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import services
from engine.deploy import supervisor
from engine.store import connect
from engine.store import deployments as store
from engine.store.samples import query_run
from engine.workspace import Workspace

ACTOR = "soak"
WARM_UP_S = 5.0
"""Imports, connection pools and first segments settle in the first seconds; memory is compared after."""


def rss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` in KiB, from /proc (None once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemoryProbe(threading.Thread):
    """Samples the resident set of named processes every ``every_s`` until stopped."""

    def __init__(self, pids: dict[str, int], every_s: float = 1.0):
        super().__init__(daemon=True)
        self.pids, self.every_s = pids, every_s
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
        self.blocks: list[tuple[float, int]] = []
        """This process's allocated Python memory blocks (objects, roughly), sampled with the rest."""
        self._done = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._done.wait(self.every_s):
            for name, pid in self.pids.items():
                kib = rss_kib(pid)
                if kib is not None:
                    self.samples[name].append((time.monotonic() - start, kib))
            self.blocks.append((time.monotonic() - start, sys.getallocatedblocks()))

    def stop(self) -> None:
        self._done.set()
        self.join()

    def growth(self) -> dict[str, dict[str, float]]:
        """Per process: MiB at the start and the end (medians of the first and last fifth after warm-up)."""
        out = {}
        for name, points in self.samples.items():
            ends = _start_and_end(points)
            if ends is not None:
                first, last = ends[0] / 1024, ends[1] / 1024
                out[name] = {"start_mib": first, "end_mib": last, "growth_mib": last - first}
        return out

    def block_growth(self) -> dict[str, float]:
        """This process's Python blocks at the start and the end, as :meth:`growth` takes them."""
        ends = _start_and_end(self.blocks)
        if ends is None:
            return {}
        return {"start": ends[0], "end": ends[1], "growth": ends[1] - ends[0]}


def _start_and_end(points: list[tuple[float, int]]) -> tuple[float, float] | None:
    """Medians of the first and the last fifth of the values sampled after the warm-up (None: too few)."""
    kept = [value for t, value in points if t >= WARM_UP_S]
    if len(kept) < 5:
        return None
    fifth = max(1, len(kept) // 5)
    return statistics.median(kept[:fifth]), statistics.median(kept[-fifth:])


@dataclass
class SoakFigures:
    rps: float
    seconds: float
    run: dict[str, Any]
    gateway: dict[str, int]
    samples: dict[str, int]
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    driver_blocks: dict[str, float] = field(default_factory=dict)
    """The driver's Python blocks at the start and the end (:meth:`MemoryProbe.block_growth`)."""

    @property
    def achieved_rps(self) -> float:
        return self.run["sent"] / self.seconds

    def lines(self) -> list[str]:
        r, g, s = self.run, self.gateway, self.samples
        out = [
            f"offered {self.rps:.0f} req/s for {self.seconds:.0f} s; sent {r['sent']} "
            f"({self.achieved_rps:.1f} req/s), ok {r['ok']}, failed {r['failed']}, lost {r['lost']}, "
            f"status {r['status']}",
            f"gateway counted: blue {g.get('blue', 0)}, green {g.get('green', 0)} (mirrored)",
            f"samples in segments: old {s.get('old', 0)}, new {s.get('new', 0)}; run row says {r['samples']}",
        ]
        for name, m in self.memory.items():
            out.append(
                f"memory {name:8s} {m['start_mib']:7.1f} MiB -> {m['end_mib']:7.1f} MiB "
                f"({m['growth_mib']:+.1f} MiB, {m['growth_mib'] / m['start_mib']:+.1%})"
            )
        b = self.driver_blocks
        if b:
            out.append(
                f"python blocks driver {b['start']:,.0f} -> {b['end']:,.0f} ({b['growth']:+,.0f}, "
                f"{b['growth'] / max(r['sent'], 1):+.2f} per request sent)"
            )
        return out


def prepare(root: Path, system: str) -> Workspace:
    """A new workspace on the sample fleet with ``system`` converted, validated and green deployed."""
    ws = Workspace(root)
    services.init_workspace(ws, actor=ACTOR)  # a new workspace's first actor is its operator
    services.convert_systems(ws, [system], actor=ACTOR)
    deploy_green(ws, system)
    return ws


def deploy_green(ws: Workspace, system: str, actor: str = ACTOR) -> None:
    """Validate v2, pass the checklist and deploy: the way to green, first or again after a rollback."""
    services.validate_systems_v2(ws, [system], actor=actor)
    services.checklist(ws, system, actor=actor, ack="team_notified", note="soak test")
    services.deploy(ws, system, actor=actor)


def _pids(ws: Workspace, system: str) -> dict[str, int]:
    with connect(ws.db_path) as con:
        live = store.live_processes(con)
    out = {"driver": os.getpid()}
    for row in live.iter_rows(named=True):
        if row["role"] == "gateway" or row["system"] == system:
            out[row["role"]] = int(row["pid"])
    return out


def _gateway_counts(ws: Workspace, system: str) -> dict[str, int]:
    """Requests the gateway answered per slot so far (its /_switchyard/stats)."""
    port = supervisor.gateway_port(ws)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_switchyard/stats", timeout=5) as reply:
        per_slot = json.load(reply)["systems"].get(system, {})
    return {slot: int(c["requests"]) for slot, c in per_slot.items()}


def soak(
    ws: Workspace, system: str, *, seconds: float, rps: float, bucket_s: float = 1.0, actor: str = ACTOR
) -> SoakFigures:
    """One parallel run of ``seconds`` at ``rps`` with memory sampled and every count read back."""
    state = services.status(ws, system).state
    if state == "parallel_run":  # a run before it (a rate probe): judge it
        services.judge_system(ws, system, actor=actor)
    elif state == "rolled_back":  # a probe past the machine's rate fired a trigger: the engine rolled back
        deploy_green(ws, system, actor)
    before = _gateway_counts(ws, system)
    probe = MemoryProbe(_pids(ws, system))
    probe.start()
    try:
        outcome = services.parallel_run(
            ws, system, actor=actor, duration_s=seconds, bucket_s=bucket_s, rps=rps
        )
    finally:
        probe.stop()
    after = _gateway_counts(ws, system)
    with connect(ws.db_path) as con:
        run = store.get_run(con, outcome.run_id)
    counted = query_run(ws, system, outcome.run_id, "SELECT version, count(*) AS n FROM s GROUP BY version")
    by_version = {} if counted is None else dict(zip(counted["version"], counted["n"], strict=True))
    return SoakFigures(
        rps=rps,
        seconds=seconds,
        run={**outcome.summary, "samples": int(run["samples"]), "status": run["status"]},
        gateway={slot: after.get(slot, 0) - before.get(slot, 0) for slot in after},
        samples={k: int(v) for k, v in by_version.items()},
        memory=probe.growth(),
        driver_blocks=probe.block_growth(),
    )


def sustained_rate(ws: Workspace, system: str, *, start: float = 100, probe_s: float = 8) -> float:
    """The highest rate a short run delivered in full: double until one is not, then bisect twice."""

    def delivered(rate: float) -> bool:
        figures = soak(ws, system, seconds=probe_s, rps=rate)
        run = figures.run
        ok = figures.achieved_rps >= 0.97 * rate and run["lost"] == 0 and not run.get("fired")
        print(
            f"  probe {rate:5.0f} req/s: sent {figures.achieved_rps:6.1f}/s, lost {run['lost']}, "
            f"{'delivered' if ok else 'not delivered'}"
            + (f" ({run['fired']['explanation']}: rolled back)" if run.get("fired") else "")
        )
        return ok

    good, bad = 0.0, start
    while delivered(bad):
        good, bad = bad, bad * 2
    for _ in range(2):
        middle = (good + bad) / 2
        good, bad = (middle, bad) if delivered(middle) else (good, middle)
    return good


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rps", type=float, help="offered rate (default: find the sustained rate first)")
    parser.add_argument("--system", default="hello_world_api")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchyard-soak-") as tmp:
        ws = prepare(Path(tmp) / "ws", args.system)
        try:
            rps = args.rps
            if rps is None:
                print("finding the sustained rate:")
                rps = sustained_rate(ws, args.system)
            print(f"soak: {args.seconds:.0f} s at {rps:.0f} req/s on {args.system}")
            figures = soak(ws, args.system, seconds=args.seconds, rps=rps)
            for line in figures.lines():
                print(line)
        finally:
            services.down(ws, actor=ACTOR)


if __name__ == "__main__":
    main()
