"""The judge's operating characteristic: GO / NO_GO / INCONCLUSIVE rates on simulated runs with known
differences, at several sample sizes, paired (mirrored, with request ids) and unpaired (the same runs
with the ids dropped).

Run: python -m bench.judge_power [--runs 200] [--sizes 300,1000,3000,10000] [--scenarios a,b] [--seed 1]
      [--noise lognormal|busy|heavy] [--modes paired,unpaired,own]

Modes: ``paired`` and ``unpaired`` judge the round trip alone (samples without ``service_ms``, as
before the gateway read the versions' own time, or a user's file); ``own`` is a mirrored run as the
gateway records it now: each version's own time (``service_ms``, :data:`OWN`, fitted to real A/A runs)
and the round trip around it (the ``--noise`` model on top of it), judged on own time with the round
trip as a guard.

A judge is a test, and a test has a size and a power: this measures both, the
way one measures a classifier, instead of arguing them.

The noise model is fitted to a real mirrored run of ``hello_world_api`` on
this machine (1,800 requests at 60 req/s, 2 busy cores shared with other
work): per request, the log latency is

* the endpoint's base latency;
* shared load: an AR(1) process over requests (lag-one correlation 0.95),
  skewed to the slow side (a squared Gaussian, centred), sd 0.6: it hits
  both versions of a mirrored request at once;
* the request's own cost, shared by both versions, sd 0.2;
* each version's own disturbance: in episodes (a latent AR(1) above a
  threshold, half the time, a few requests long) the version is slowed by
  an exponential factor (mean 0.7 in log: about 2x), plus 3 % jitter.

That reproduces the real run's per-request log ratio quantiles (1 %: -2.5,
25 %: -0.3, 75 %: +0.3, 99 %: +2.5), the correlation of old and new (0.53
vs 0.54) and the autocorrelation of old (0.55 vs 0.53) and of the ratio
(0.22 vs 0.27). It is noisier than most services (a 1 ms service on a busy
machine): a hard case, on purpose.

A scenario's change is applied to new: a latency factor on every request,
3 % of requests 12x slower (the tail), one endpoint with a fifth of the
traffic 60 % slower, extra errors, a factor that climbs over the run
(drift), or a wider spread around an unchanged median.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.signal import lfilter

from engine.judge.policy import Policy, load_policy
from engine.judge.verdict import judge_samples

RATE = 50.0
"""Mirrored requests a second: 1,000 requests are a 20 s run."""
ENDPOINTS = ("/orders", "/users", "/search", "/health", "/cart")
SHARES = (0.3, 0.25, 0.2, 0.15, 0.1)
BASE_MS = (1.0, 0.6, 2.5, 0.3, 1.5)
SLOW_ENDPOINT = 2
"""``/search``, a fifth of the traffic, is the one the endpoint scenario slows."""
BASE_ERRORS = 0.002


@dataclass(frozen=True)
class Noise:
    """How latency varies: shared by both versions of a request, and each version's own."""

    name: str
    load_sd: float
    """Shared load (AR(1) over requests, skewed to the slow side), sd in log latency."""
    load_rho: float
    request_sd: float
    """The request's own cost, shared by both versions."""
    own_sd: float
    """Each version's own Gaussian noise."""
    disturbed: float
    """Share of requests in an episode where one version is slowed (0: none)."""
    disturb_rho: float
    disturb_mean: float
    """Mean of the exponential slowdown in log latency during an episode or an outlier."""
    outliers: float
    """Share of requests (independently per version) slowed like a GC pause."""
    slow: float = 0.0
    """Share of requests (per version, in short episodes) descheduled: slower by e^``slow_log``."""
    slow_log: float = 0.0
    burst_rate: float = 0.0
    """Bursts per request and version: a few consecutive requests of one version e^``burst_log`` slower."""
    burst_len: float = 6.0
    burst_log: float = 3.3


LOGNORMAL = Noise("lognormal", 0.3, 0.95, 0.3, 0.2, 0.0, 0.8, 1.0, 0.01)
"""A service measured on a quiet machine: lognormal (sd about 0.5 in log), 1 % outliers of e^Exp(1)."""
BUSY = Noise("busy", 0.6, 0.95, 0.2, 0.03, 0.5, 0.8, 0.7, 0.0)
"""Fitted to a real mirrored run of hello_world_api on this 2-core machine under other work, when the
gateway sent both versions of a request at the same moment (they shared its load)."""
HEAVY = Noise("heavy", 0.3, 0.95, 0.0, 0.2, 0.0, 0.3, 0.0, 0.0, 0.4, 1.4, 1 / 800, 6.0, 3.3)
"""Fitted to 10 real A/A runs of hello_world_api here (800 pairs each, load 8-15) after the gateway
began calling the shadow after the caller's answer: per version, 40 % of requests descheduled (about
4x slower, in episodes of a few requests) nearly independently of its partner (log latencies correlate
0.1-0.4), and about one burst per 800 requests of ~6 consecutive requests ~27x slower. Per-request log
ratio: sd 1.1-1.2 (real 1.1-1.3), quantiles 1 %: -2.5, 25 %: -0.8, 75 %: +0.6, 99 %: +2.6 (real
-2.5, -0.9, +0.6, +2.4), density at the median 0.5 (real 0.36-0.6), old p99/p50 10-20 (real 5-27)."""
NOISES = {n.name: n for n in (LOGNORMAL, BUSY, HEAVY)}
OWN = Noise("own", 0.15, 0.9, 0.25, 0.25, 0.0, 0.8, 0.7, 0.02)
"""Each version's own time (``service_ms``), fitted to 8 real A/A runs of hello_world_api here (two fresh
copies each, 800 pairs, load 11-16): per version sd of log own time 0.3-0.43 (simulated 0.41), old and
new correlated 0.3-0.5 (0.5), per-request log ratio sd 0.35-0.49 (0.38), quantiles of the ratio 1 %:
-1.0, 99 %: +0.9 (-0.9, +0.9). The round trip is this plus the ``--noise`` model's (the HTTP and the
machine's run-queue waits, outside either version)."""
OWN_SCALE = 0.2
"""Own time is about a fifth of the round trip here (p50 0.21 ms of 1.2-1.7 ms)."""
PROCESS_MEAN, PROCESS_SD = -0.012, 0.015
"""Per run, new's own time is off by exp(N(mean, sd)): the two processes' own difference and the
shadow's position (8 fresh A/A runs: medians -3.2 % to +0.9 %, mean -1.2 %, sd 1.5 %)."""
T0 = dt.datetime(2026, 1, 1)


@dataclass(frozen=True)
class Scenario:
    """What differs in new, and which verdicts are right for it."""

    name: str
    right: tuple[str, ...]
    """The verdicts that are right; GO outside them is the error to keep at <= 1 %."""
    factor: float = 1.0
    tail_share: float = 0.0
    endpoint_factor: float = 1.0
    extra_errors: float = 0.0
    drift: tuple[float, float] | None = None
    spread: float = 1.0
    trip_factor: float = 1.0
    """New's round trip outside its own time (its HTTP layer, its answers' size) is this much slower."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("unchanged", ("GO",)),
        Scenario("+5%", ("GO",), factor=1.05),
        Scenario("+8%", ("GO",), factor=1.08),
        Scenario("+12%", ("NO_GO",), factor=1.12),
        Scenario("+14%", ("NO_GO",), factor=1.14),
        Scenario("+15%", ("NO_GO",), factor=1.15),
        Scenario("+20%", ("NO_GO",), factor=1.20),
        Scenario("p99 tail", ("NO_GO",), tail_share=0.03),
        Scenario("spread x1.5", ("NO_GO",), spread=1.5),
        Scenario("endpoint +60%", ("NO_GO",), endpoint_factor=1.6),
        Scenario("errors +0.5pt", ("GO",), extra_errors=0.005),
        Scenario("errors +2pt", ("NO_GO",), extra_errors=0.02),
        Scenario("drift 0.9->1.2", ("NO_GO",), drift=(0.9, 1.2)),
        Scenario("round trip +30%", ("NO_GO", "INCONCLUSIVE"), trip_factor=1.3),
    )
}
"""``round trip +30%``: new's own time unchanged, what callers wait 30 % longer. Without own time it is a
+30 % change like another; with it, the round trip's guard must keep it from GO (NO_GO or INCONCLUSIVE)."""


def _ar1(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """A stationary AR(1) series with unit variance."""
    shocks = rng.standard_normal(n) * math.sqrt(1 - rho * rho)
    shocks[0] = rng.standard_normal()
    return lfilter([1.0], [1.0, -rho], shocks)


def _episodes(rng: np.random.Generator, n: int, share: float, rho: float) -> np.ndarray:
    """Requests in an episode: a latent AR(1) above its quantile, a few requests long."""
    threshold = float(np.quantile(rng.standard_normal(4096), 1 - share))
    return _ar1(rng, n, rho) > threshold


def _own(rng: np.random.Generator, n: int, noise: Noise) -> np.ndarray:
    """One version's own deviation in log latency: noise, episodes of slowdowns, outliers, bursts."""
    slowed = rng.random(n) < noise.outliers
    if noise.disturbed:
        slowed |= _episodes(rng, n, noise.disturbed, noise.disturb_rho)
    out = rng.normal(0, noise.own_sd, n) + slowed * rng.exponential(noise.disturb_mean, n)
    if noise.slow:  # descheduled: a second mode, 4x slower
        out += _episodes(rng, n, noise.slow, noise.disturb_rho) * rng.normal(noise.slow_log, 0.5, n)
    for start in np.flatnonzero(rng.random(n) < noise.burst_rate):
        end = min(n, start + max(1, int(rng.poisson(noise.burst_len))))
        out[start:end] += noise.burst_log + rng.normal(0, 0.4, end - start)
    return out


def _versions(
    scenario: Scenario, rng: np.random.Generator, endpoint: np.ndarray, noise: Noise, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Old's and new's latencies (ms) for requests at ``endpoint`` under ``noise``, the change applied."""
    n = endpoint.size
    load = _ar1(rng, n, noise.load_rho)
    shared = (load * load - 1) / math.sqrt(2) * noise.load_sd + rng.normal(0, noise.request_sd, n)
    base = np.log(np.asarray(BASE_MS) * scale)[endpoint]
    old_dev, new_dev = shared + _own(rng, n, noise), shared + _own(rng, n, noise)
    if scenario.spread != 1.0:  # wider around the same median
        middle = float(np.median(new_dev))
        new_dev = middle + scenario.spread * (new_dev - middle)
    log_factor = np.full(n, math.log(scenario.factor))
    if scenario.drift is not None:
        log_factor += np.log(np.linspace(*scenario.drift, n))
    log_factor += math.log(scenario.endpoint_factor) * (endpoint == SLOW_ENDPOINT)
    log_factor += math.log(12.0) * (rng.random(n) < scenario.tail_share)
    return np.exp(base + old_dev), np.exp(base + new_dev + log_factor)


def simulate_run(
    scenario: Scenario, n: int, seed: int, paired: bool = True, noise: Noise = LOGNORMAL, own: bool = False
) -> pl.DataFrame:
    """``n`` mirrored requests under ``scenario`` as a samples frame; ``paired=False`` drops the ids.

    ``own``: the versions' own time (:data:`OWN`, where the change applies) is recorded as
    ``service_ms``, and the round trip is it plus ``noise`` (where only ``trip_factor`` applies).
    """
    rng = np.random.default_rng(seed)
    endpoint = rng.choice(len(ENDPOINTS), size=n, p=SHARES)
    if own:
        old_own, new_own = _versions(scenario, rng, endpoint, OWN, OWN_SCALE)
        new_own *= math.exp(rng.normal(PROCESS_MEAN, PROCESS_SD))
        trip = Scenario("trip", (), factor=scenario.trip_factor)
        old_out, new_out = _versions(trip, rng, endpoint, noise, 1 - OWN_SCALE)
        old_ms, new_ms = old_own + old_out, new_own + new_out
    else:
        old_ms, new_ms = _versions(scenario, rng, endpoint, noise)
        new_ms *= scenario.trip_factor
    old_ok = rng.random(n) >= BASE_ERRORS
    new_ok = rng.random(n) >= BASE_ERRORS + scenario.extra_errors
    ts = np.datetime64(T0, "us") + (np.arange(n) * (1e6 / RATE)).astype("timedelta64[us]")
    names = np.asarray(ENDPOINTS)[endpoint]
    ids = np.arange(n) if paired else np.full(n, None)
    old = pl.DataFrame({"ts": ts, "version": "old", "latency_ms": old_ms, "ok": old_ok, "endpoint": names})
    new = pl.DataFrame({"ts": ts, "version": "new", "latency_ms": new_ms, "ok": new_ok, "endpoint": names})
    old = old.with_columns(pl.lit(None, pl.Boolean).alias("match"), pl.Series("request_id", ids, pl.Int64))
    new = new.with_columns(pl.lit(True).alias("match"), pl.Series("request_id", ids, pl.Int64))
    if own:
        old = old.with_columns(pl.Series("service_ms", old_own))
        new = new.with_columns(pl.Series("service_ms", new_own))
    return pl.concat([old, new]).sort("ts", maintain_order=True)


@dataclass
class Cell:
    """Verdict counts of one scenario at one size and mode."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def runs(self) -> int:
        return sum(self.counts.values())

    def rate(self, verdict: str) -> float:
        return self.counts[verdict] / self.runs if self.runs else math.nan


def operating_characteristic(
    scenario: Scenario,
    n: int,
    runs: int,
    paired: bool,
    policy: Policy,
    seed: int = 1,
    noise: Noise = LOGNORMAL,
    own: bool = False,
) -> Cell:
    """Judge ``runs`` simulated runs of ``scenario`` with ``n`` requests, each with its own seed."""
    cell = Cell()
    for i in range(runs):
        frame = simulate_run(scenario, n, seed * 10_000_000 + n * 1_000 + i, paired, noise, own)
        cell.counts[judge_samples(frame, policy, validation_success_rate=1.0).verdict] += 1
    return cell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--sizes", default="300,1000,3000,10000")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--noise", default="lognormal", choices=sorted(NOISES))
    parser.add_argument("--modes", default="paired,unpaired,own")
    args = parser.parse_args()
    policy = load_policy()
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    noise = NOISES[args.noise]
    print(f"noise {noise}; own time (mode own) {OWN}, process effect N({PROCESS_MEAN}, {PROCESS_SD})")
    print(f"{args.runs} runs per cell; GO / NO_GO / INCONCLUSIVE in %; * marks a GO where GO is wrong")
    print(f"{'scenario':16s} {'mode':8s}" + "".join(f"{f'n={n:,}':>20s}" for n in sizes))
    for name in args.scenarios.split(","):
        scenario = SCENARIOS[name]
        for mode in args.modes.split(","):
            row = f"{name:16s} {mode:8s}"
            for n in sizes:
                cell = operating_characteristic(
                    scenario, n, args.runs, mode != "unpaired", policy, args.seed, noise, mode == "own"
                )
                go, no, unsure = (100 * cell.rate(v) for v in ("GO", "NO_GO", "INCONCLUSIVE"))
                flag = "*" if go and "GO" not in scenario.right else " "
                row += f"{go:6.1f}{flag}{no:6.1f} {unsure:5.1f}"
            print(row, flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
