"""The seed's triggers on a run's samples as they arrive, in memory that does not grow with the run.

A watcher checks the triggers every second for as long as the run lasts (the
seed's parallel run is 24 h). Keeping every sample for that grew the driver
by about 50 MiB in a 5-minute soak at 800 req/s, and a day at 50 req/s would
hold 8.6 M rows. The triggers need much less: per version, how many requests
and errors, how many answered ok, and the p95 of the ok latencies. The first
three are counters; the quantile comes from :class:`LatencySketch`, a
logarithmic histogram with a fixed number of bins whose quantiles are within
:data:`RELATIVE_ACCURACY` of the exact ones (the idea of DDSketch, Masson et
al., VLDB 2019), filled a whole frame at a time with numpy.

The final verdict is not taken from here: the judge reads the stored samples
and tests them exactly. This only decides, mid-run, whether to stop early.

A rollback on noise is a product failure, not a blip: on a busy machine one
burst of load can push the new version's p95 past twice the old one's for a
second (seen here at load 6: "new p95 is 2.10x the baseline" in the monitor
window of an unchanged system). So, as Flagger's ``threshold`` and Argo's
``failureLimit`` do, the latency and throughput triggers fire only when their
breach holds on ``policy.triggers.breach_checks`` checks in a row, and the p95
ratio is only measured once each version has ``min_p95_samples`` ok requests.
The seed's thresholds are unchanged. Errors, validation and health checks
fire on the first check.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from engine.judge.policy import Policy, TriggerPolicy
from engine.judge.verdict import Trigger, seed_triggers, throughput_ratio

CONFIRMED = ("latency_p95_ratio", "throughput_ratio")
"""Triggers that fire only once their breach has held on ``breach_checks`` checks in a row."""

RELATIVE_ACCURACY = 0.005
"""Every quantile is within 0.5 % of the exact one: a p95 ratio of 2.00 reads as 1.98 to 2.02 at worst."""

SMALLEST_MS = 1e-3
LARGEST_MS = 1e7
"""Latencies are clamped into [1 µs, ~3 h]; the gateway gives up on a request long before the top."""

_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_BINS = math.ceil(math.log(LARGEST_MS / SMALLEST_MS) / _LOG_GAMMA) + 1  # 2,304 bins, 18 KiB per sketch


class LatencySketch:
    """A quantile summary of latencies in a fixed 18 KiB (see the module docstring).

    Bin ``i`` holds the values in ``(SMALLEST·γ^(i-1), SMALLEST·γ^i]``; a
    quantile answers with the bin's midpoint in relative terms, which is within
    :data:`RELATIVE_ACCURACY` of every value in it.
    """

    def __init__(self) -> None:
        self.counts = np.zeros(_BINS, dtype=np.int64)

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def add(self, latencies_ms: np.ndarray) -> None:
        """Count a batch of latencies (NaN is skipped: it is no measurement)."""
        values = np.asarray(latencies_ms, dtype=np.float64)
        values = np.clip(values[~np.isnan(values)], SMALLEST_MS, LARGEST_MS)
        if values.size:
            index = np.ceil(np.log(values / SMALLEST_MS) / _LOG_GAMMA).astype(np.int64)
            self.counts += np.bincount(np.clip(index, 0, _BINS - 1), minlength=_BINS)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (the nearest rank, as polars' default), None when empty."""
        total = self.count
        if not total:
            return None
        rank = round(q * (total - 1))  # 0-based rank of the answer in sorted order
        index = int(np.searchsorted(np.cumsum(self.counts), rank + 1))
        return SMALLEST_MS * 2 * _GAMMA**index / (_GAMMA + 1)


class _Side:
    """One version's counters and ok-latency sketch."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.ok_latency = LatencySketch()

    def add(self, rows: pl.DataFrame) -> None:
        ok = rows.filter(pl.col("ok"))
        self.requests += rows.height
        self.errors += rows.height - ok.height
        self.ok_latency.add(ok["latency_ms"].to_numpy())


class RunningTriggers:
    """What the seed's triggers need from a run's samples, fed batch by batch (see the module docstring)."""

    def __init__(self) -> None:
        self.old, self.new = _Side(), _Side()
        self.streaks = dict.fromkeys(CONFIRMED, 0)
        """Per confirmed trigger, the checks in a row (up to the last) its breach has held on."""

    @property
    def rows(self) -> int:
        return self.old.requests + self.new.requests

    def add(self, samples: pl.DataFrame) -> None:
        """Count a batch of samples (columns ``version``, ``ok``, ``latency_ms``); each row once."""
        if samples.height:
            self.old.add(samples.filter(pl.col("version") == "old"))
            self.new.add(samples.filter(pl.col("version") == "new"))

    def evaluate(
        self,
        policy: Policy,
        validation_success_rate: float | None,
        failed_health_checks: int | None,
        new_share: float | None = None,
    ) -> list[Trigger]:
        """One check: the seed's five triggers on everything added so far (see the module docstring).

        Each call counts as a check for the breach streaks, so call it once a tick.
        """
        old, new, limits = self.old, self.new, policy.triggers
        err = new.errors / new.requests if new.requests else None
        sampled = min(old.ok_latency.count, new.ok_latency.count)
        base, now = old.ok_latency.quantile(0.95), new.ok_latency.quantile(0.95)
        trusted = sampled >= limits.min_p95_samples
        ratio = now / base if trusted and base and now is not None else None
        ok_old, ok_new = old.requests - old.errors, new.requests - new.errors
        triggers = seed_triggers(
            policy,
            validation=validation_success_rate,
            error_rate=err,
            p95_ratio=ratio,
            throughput_ratio=throughput_ratio(ok_old, ok_new, new.requests, new_share),
            failed_health_checks=failed_health_checks,
        )
        out = [self._confirm(t, limits) if t.name in CONFIRMED else t for t in triggers]
        if not trusted and base is not None and now is not None:
            p95 = next(i for i, t in enumerate(out) if t.name == "latency_p95_ratio")
            out[p95] = out[p95].model_copy(
                update={
                    "explanation": f"not measured yet: {sampled} of the {limits.min_p95_samples} ok "
                    "requests per version a p95 ratio needs"
                }
            )
        return out

    def _confirm(self, trigger: Trigger, limits: TriggerPolicy) -> Trigger:
        """``trigger`` as fired only when its breach has held on ``limits.breach_checks`` checks in a row."""
        streak = self.streaks[trigger.name] + 1 if trigger.fired else 0
        self.streaks[trigger.name] = streak
        needed = limits.breach_checks
        if not trigger.fired or needed == 1:
            return trigger
        held = f"{trigger.explanation}, over on {streak} of the {needed} checks in a row it must hold for"
        return trigger.model_copy(update={"fired": streak >= needed, "explanation": held})
