"""A/A bias of a mirrored run, before and after the measurement fix, side by side in one run.

Run: python -m bench.aa_calibration [--rounds 4] [--rps 40] [--seconds 20] [--before REV]

Two copies of the same old version (hello_world_api on the v1 runtime) sit behind
the gateway, one as blue (labelled old), one as green (labelled new), green
mirrored: an A/A run, as Diffy compares two primaries. Whatever difference the
run reads between them is the measurement's own bias and noise.

The same two backends are driven through two gateways in turn, alternating in
each round so machine drift spreads over both: *before* is the gateway of
``--before`` (by default the commit before the gateway began calling the two
versions in turn; its ``engine/`` is exported with ``git archive``), *after*
is the gateway of this checkout. Per run it prints the p50 change with the
judge's interval for two independent samples, the judge's own latency criterion
(per request, paired by request id) and the verdict :func:`judge_samples` gives
the run under the shipped policy, with the criteria that kept it from GO. Then
the spread over the rounds, and what a caller waits on a mirrored route against
a plain one, through each gateway. Last, a real regression (a copy spinning 0.8 ms
more per call): its p50 change with each version called alone, and as each
gateway's judge reads it (sent at once, the slower one held up its partner and
the regression read a fraction of its size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from engine.deploy.http import Upstream
from engine.deploy.supervisor import free_port, healthy
from engine.judge.policy import DEFAULT_POLICY, load_policy
from engine.judge.samples import normalise_samples
from engine.judge.stats import quantile_change
from engine.judge.verdict import judge_samples
from engine.parallel.workload import drive, request_mix

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = ROOT / "data" / "generated_systems" / "hello_world_api"
MARK = "called_first"
"""The gateway's sample column that came with the fix: the commit before the first one with it is 'before'."""


def before_commit() -> str:
    """The parent of the commit that made the gateway call the two versions in turn (HEAD if not landed)."""
    found = subprocess.run(
        ["git", "log", "--reverse", "--format=%H", "-S", MARK, "--", "engine/deploy/gateway.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return f"{found[0]}^" if found else "HEAD"


def export_engine(rev: str, target: Path) -> Path:
    """``engine/`` of ``rev`` under ``target`` (a tree the old gateway runs from)."""
    archive = subprocess.run(["git", "archive", rev, "engine"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def start(args: list[str], cwd: Path, health: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", *args, "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not healthy(port, health):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{' '.join(args[:1])} did not start (from {cwd})")
        time.sleep(0.05)
    return proc, port


SLOW = """

import time as _time


def _slowed(method):
    def slower(self, message):
        {wait}  # the regression: every call at the entry takes this much longer
        return method(self, message)

    return slower


for _name in METHODS:
    setattr(Component, _name, _slowed(getattr(Component, _name)))
"""
SLEEP = "_time.sleep({delay_s})"
BUSY = (
    "_deadline = _time.perf_counter() + {delay_s}\n"
    "        while _time.perf_counter() < _deadline:\n"
    "            pass"
)


WORK = "for _ in range({iterations}):\n            pass"


def slowed_copy(
    source: Path, target: Path, delay_s: float = 0.003, busy: bool = False, iterations: int = 0
) -> Path:
    """A copy of a v1 system whose entry component waits ``delay_s`` before every call (same answers).

    ``busy``: it spins on the CPU instead of sleeping, so a gateway that sends both
    versions at once lets the slower one hold up its partner (what the bench shows).
    ``iterations``: it does that much more work instead (an empty loop of so many turns),
    a CPU-bound regression whose cost does not shrink when the machine is busy, as a spin
    to a deadline does (part of its time is then the run queue's, not its own).
    """
    shutil.copytree(source, target)
    if iterations:
        wait = WORK.format(iterations=iterations)
    else:
        wait = (BUSY if busy else SLEEP).format(delay_s=delay_s)
    with (target / "components" / "gateway.py").open("a") as module:
        module.write(SLOW.format(wait=wait))
    return target


def serve(system_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Serve a v1 system folder; (process, port)."""
    return start(
        ["engine.runtime.serve", "--system-dir", str(system_dir), "--runtime", "v1"], ROOT, "/health"
    )


@dataclass
class Figures:
    label: str
    pairs: int
    old_p50: float
    new_p50: float
    unpaired: tuple[float, float, float]
    paired: tuple[float, float, float]
    verdict: str

    def line(self) -> str:
        def change(c: tuple[float, float, float]) -> str:
            return f"{c[0]:+6.1%} [{c[1]:+6.1%}, {c[2]:+6.1%}] w {c[2] - c[1]:5.1%}"

        return (
            f"{self.label:6} {self.pairs:5d} pairs  p50 {self.old_p50:.3f}/{self.new_p50:.3f} ms  "
            f"p50 change {change(self.unpaired)}  paired {change(self.paired)}  {self.verdict}"
        )


def figures(label: str, samples: pl.DataFrame, policy_path: Path) -> Figures:
    """The run's p50 change as two independent samples, and the judge's own verdict and latency criterion."""
    old = samples.filter(pl.col("version") == "old").sort("ts")
    new = samples.filter(pl.col("version") == "new").sort("ts")
    pairs = old.select("request_id", pl.col("latency_ms").alias("old"), pl.col("ok").alias("ok_old")).join(
        new.select("request_id", pl.col("latency_ms").alias("new"), pl.col("ok").alias("ok_new")),
        on="request_id",
        maintain_order="left",
    )
    pairs = pairs.filter(pl.col("ok_old") & pl.col("ok_new"))
    unpaired = quantile_change(pairs["old"].to_numpy(), pairs["new"].to_numpy(), 0.5, 0.95)  # time order
    columns = ["ts", "version", "latency_ms", "ok", "endpoint", "match", "request_id"]
    verdict = judge_samples(
        normalise_samples(samples.select(columns)), load_policy(policy_path), validation_success_rate=1.0
    )
    latency = next(c for c in verdict.criteria if c.name == "latency_increase")
    blocking = [
        c.name for c in verdict.criteria if not (c.passed and c.conclusive) and c.observed is not None
    ]
    return Figures(
        label,
        pairs.height,
        float(np.median(pairs["old"].to_numpy())),
        float(np.median(pairs["new"].to_numpy())),
        (unpaired.estimate, unpaired.low, unpaired.high),
        (latency.observed or math.nan, latency.ci_low or math.nan, latency.ci_high or math.nan),
        f"{verdict.verdict}" + (f" ({', '.join(blocking)})" if blocking and verdict.verdict != "GO" else ""),
    )


def mirrored_samples(
    tree: Path, ports: tuple[int, int], rps: float, seconds: float, work: Path, label: str = "aa"
) -> pl.DataFrame:
    """Samples of one mirrored run, old on ``ports[0]``, new on ``ports[1]``, through the gateway of ``tree``.

    The gateway is started for the run and stopped after it (a clean stop writes
    what it still buffered). No store and no workspace: only the measurement path.
    """
    run_id = f"aa-{label}-{time.monotonic_ns()}"
    routes = work / f"routes-{label}.json"
    slots = {"blue": {"port": ports[0], "version": "old"}, "green": {"port": ports[1], "version": "new"}}
    route = {"active": "blue", "canary_weight": 0.0, "mirror": True, "record_run": run_id, "slots": slots}
    routes.write_text(json.dumps({"systems": {"aa": route}}))
    samples_dir = work / "samples"
    gateway, port = start(
        ["engine.deploy.gateway", "--routes", str(routes), "--samples-dir", str(samples_dir)],
        tree,
        "/_switchyard/health",
    )
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/endpoints", timeout=5) as answer:
            mix = request_mix(json.loads(answer.read())["endpoints"])
        asyncio.run(drive(port, "/s/aa/call", mix, rps=rps, duration_s=seconds))
    finally:
        gateway.terminate()
        gateway.wait(10)
    return pl.read_parquet(samples_dir / "system=aa" / f"run={run_id}" / "part-*.parquet")


def aa_run(tree: Path, label: str, ports: tuple[int, int], rps: float, seconds: float, work: Path) -> Figures:
    """One mirrored A/A run through the gateway of ``tree``, with its figures."""
    return figures(label, mirrored_samples(tree, ports, rps, seconds, work, label), DEFAULT_POLICY)


def caller_latencies(
    tree: Path, ports: tuple[int, int], work: Path, blocks: int = 6, per_block: int = 150
) -> dict:
    """What a caller waits through the gateway of ``tree``: a plain route against a mirrored one.

    One connection, closed loop, alternating blocks of ``per_block`` requests on
    each route; returns each route's latencies in ms.
    """
    slots = {"blue": {"port": ports[0], "version": "old"}, "green": {"port": ports[1], "version": "new"}}
    routes = {
        name: {"active": "blue", "canary_weight": 0.0, "mirror": mirror, "record_run": f"caller-{name}"}
        | {"slots": slots}
        for name, mirror in (("plain", False), ("mirrored", True))
    }
    routes_file = work / "routes-caller.json"
    routes_file.write_text(json.dumps({"systems": routes}))
    gateway, port = start(
        ["engine.deploy.gateway", "--routes", str(routes_file), "--samples-dir", str(work / "samples")],
        tree,
        "/_switchyard/health",
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/endpoints", timeout=5) as answer:
        mix = request_mix(json.loads(answer.read())["endpoints"])

    async def loop() -> dict[str, list[float]]:
        client = Upstream("127.0.0.1", port)
        waits: dict[str, list[float]] = {"plain": [], "mirrored": []}
        try:
            for block in range(2 * blocks):
                name = ("plain", "mirrored")[block % 2]
                for i in range(per_block):
                    endpoint, body = mix[i % len(mix)]
                    t0 = time.perf_counter()
                    await client.request("POST", f"/s/{name}/call/{endpoint}", body)
                    waits[name].append((time.perf_counter() - t0) * 1000)
                    # paced: the shadow (called SHADOW_GAP_S after the answer) is over before the next call;
                    # at 5 ms it met the next call: mirrored/plain 1.34x at p50; at 20 ms 1.00x
                    await asyncio.sleep(0.02)
        finally:
            client.close()
        return waits

    try:
        return asyncio.run(loop())
    finally:
        gateway.terminate()
        gateway.wait(10)


def direct_change(ports: tuple[int, int], work: Path, requests: int = 200) -> float:
    """new/old - 1 of the p50, each version called straight, one call at a time, alternating: the truth."""
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/endpoints", timeout=5) as answer:
        mix = request_mix(json.loads(answer.read())["endpoints"])

    async def loop() -> float:
        clients = [Upstream("127.0.0.1", port) for port in ports]
        waits: list[list[float]] = [[], []]
        try:
            for i in range(requests):
                for k in (0, 1) if i % 2 == 0 else (1, 0):
                    endpoint, body = mix[i % len(mix)]
                    t0 = time.perf_counter()
                    await clients[k].request("POST", f"/call/{endpoint}", body)
                    waits[k].append(time.perf_counter() - t0)
                    await asyncio.sleep(0.012)
        finally:
            for client in clients:
                client.close()
        return float(np.median(waits[1]) / np.median(waits[0]) - 1)

    return asyncio.run(loop())


def regression_read(trees: dict[str, Path], work: Path, rps: float, seconds: float) -> None:
    """A CPU-bound regression (+0.8 ms a call): called straight, then as each gateway's judge reads it."""
    slow = slowed_copy(SYSTEM, work / "slow", delay_s=0.0008, busy=True)
    backends = [serve(SYSTEM), serve(slow)]
    ports = (backends[0][1], backends[1][1])
    try:
        print("\na real regression, old against a copy spinning 0.8 ms more per call (CPU, not sleep):")
        print(f"direct  p50 change {direct_change(ports, work):+.1%} (each called alone, alternating)")
        for label, tree in trees.items():
            samples = mirrored_samples(tree, ports, rps, seconds, work, label)
            print(figures(label, samples, DEFAULT_POLICY).line())
    finally:
        for proc, _ in backends:
            proc.terminate()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.aa_calibration", description=(__doc__ or "").strip()
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--rps", type=float, default=40.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--before", help="git revision of the 'before' gateway (default: before the fix)")
    args = parser.parse_args(argv)
    before = args.before or before_commit()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "before").mkdir()
        trees = {"before": export_engine(before, work / "before"), "after": ROOT}
        backends = [
            start(["engine.runtime.serve", "--system-dir", str(SYSTEM), "--runtime", "v1"], ROOT, "/health")
            for _ in range(2)
        ]
        print(f"A/A: two copies of {SYSTEM.name} (v1), {args.rps:g} req/s for {args.seconds:g} s per run")
        print(f"before = gateway of {before}, after = this checkout\n")
        results: dict[str, list[Figures]] = {"before": [], "after": []}
        try:
            for r in range(args.rounds):
                for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                    res = aa_run(
                        trees[label], label, (backends[0][1], backends[1][1]), args.rps, args.seconds, work
                    )
                    results[label].append(res)
                    print(res.line(), flush=True)
            print("\nwhat a caller waits (one connection; plain route vs mirrored route, same gateway):")
            for label, tree in trees.items():
                waits = caller_latencies(tree, (backends[0][1], backends[1][1]), work)
                plain, mirrored = (np.percentile(waits[k], [50, 99]) for k in ("plain", "mirrored"))
                print(
                    f"{label:6}  plain p50 {plain[0]:.3f} ms p99 {plain[1]:.3f} ms; mirrored p50 "
                    f"{mirrored[0]:.3f} ms p99 {mirrored[1]:.3f} ms; mirrored/plain "
                    f"p50 {mirrored[0] / plain[0]:.2f}x, p99 {mirrored[1] / plain[1]:.2f}x",
                    flush=True,
                )
        finally:
            for proc, _ in backends:
                proc.terminate()
    print("\nover the rounds (identical versions: every change should be 0, every verdict GO):")
    summarise(results)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "before").mkdir()
        regression_read({"before": export_engine(before, work / "before"), "after": ROOT}, work, args.rps, 15)


def summarise(results: dict[str, list[Figures]]) -> None:
    """Spread over the rounds, per gateway."""
    for label, runs in results.items():
        centres = [r.unpaired[0] for r in runs]  # the p50 change as the judge read it before pairing
        widths = [r.unpaired[2] - r.unpaired[1] for r in runs]
        paired = [r.paired[0] for r in runs]
        paired_widths = [r.paired[2] - r.paired[1] for r in runs]
        go = sum(r.verdict == "GO" for r in runs)
        holds_zero = sum(r.unpaired[1] <= 0 <= r.unpaired[2] for r in runs)
        paired_zero = sum(r.paired[1] <= 0 <= r.paired[2] for r in runs)
        print(
            f"{label:6}  p50 change from {min(centres):+.1%} to {max(centres):+.1%} "
            f"(mean |bias| {statistics.fmean(abs(c) for c in centres):.1%}), "
            f"interval {statistics.fmean(widths) * 100:.1f} points wide on average, holds 0 in "
            f"{holds_zero}/{len(runs)}; the judge's paired change from {min(paired):+.1%} to "
            f"{max(paired):+.1%} (mean |bias| {statistics.fmean(abs(c) for c in paired):.1%}, "
            f"{statistics.fmean(paired_widths) * 100:.1f} points wide, holds 0 in {paired_zero}/{len(runs)}"
            "); "
            f"GO {go}/{len(runs)}"
        )


if __name__ == "__main__":
    main()
