"""The watcher's triggers from running totals agree with the triggers on the whole frame of samples."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.judge.policy import Policy, TriggerPolicy
from engine.judge.running import RELATIVE_ACCURACY, LatencySketch, RunningTriggers
from engine.judge.verdict import evaluate_triggers

START = dt.datetime(2026, 1, 1)


def samples(seed: int, n: int, *, new_scale: float = 1.0, new_error: float = 0.01, new_n: int | None = None):
    """``n`` old and ``new_n`` new requests over a minute, lognormal latencies, some errors."""
    rng = np.random.default_rng(seed)
    new_n = n if new_n is None else new_n

    def side(version: str, count: int, scale: float, error: float) -> pl.DataFrame:
        offsets = np.sort(rng.uniform(0, 60_000, count))
        return pl.DataFrame(
            {
                "ts": [START + dt.timedelta(milliseconds=int(ms)) for ms in offsets],
                "version": [version] * count,
                "latency_ms": rng.lognormal(1.0, 0.6, count) * scale,
                "ok": rng.uniform(size=count) >= error,
            }
        )

    return pl.concat([side("old", n, 1.0, 0.01), side("new", new_n, new_scale, new_error)]).sort("ts")


@pytest.mark.parametrize("seed", range(5))
def test_sketch_quantiles_are_within_the_stated_accuracy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.lognormal(1.0, 1.5, 20_000), rng.uniform(0.001, 0.01, 50), [0.0, 4e7]])
    sketch = LatencySketch()
    for chunk in np.array_split(values, 7):  # batch by batch, as the watcher feeds it
        sketch.add(chunk)
    assert sketch.count == values.size
    series = pl.Series(values)
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = series.quantile(q)
        assert abs(sketch.quantile(q) / exact - 1) <= RELATIVE_ACCURACY + 1e-12, q


def test_an_empty_sketch_has_no_quantile_and_nan_is_not_counted() -> None:
    sketch = LatencySketch()
    assert sketch.quantile(0.95) is None
    sketch.add(np.array([np.nan, 2.0]))
    assert sketch.count == 1 and sketch.quantile(0.95) == pytest.approx(2.0, rel=RELATIVE_ACCURACY)


@pytest.mark.parametrize(
    ("scale", "error", "new_n", "share"),
    [
        (1.0, 0.01, None, None),  # a healthy new version
        (3.0, 0.01, None, None),  # p95 far beyond 2x
        (1.0, 0.2, None, None),  # errors beyond 5 %
        (1.0, 0.01, 200, None),  # throughput collapsed
        (1.0, 0.01, 100, 0.1),  # a 10 % canary step, per unit of traffic
        (1.0, 0.01, 0, None),  # no new request: not measured, never fired
    ],
)
def test_running_totals_fire_what_the_whole_frame_fires(scale, error, new_n, share) -> None:
    frame = samples(7, 1000, new_scale=scale, new_error=error, new_n=new_n)
    policy = Policy(triggers=TriggerPolicy(breach_checks=1, min_p95_samples=1))  # as the frame: one check
    exact = evaluate_triggers(frame, policy, 0.9, 0, new_share=share)
    totals = RunningTriggers()
    for offset in range(0, frame.height, 137):  # uneven batches, each row once
        totals.add(frame.slice(offset, 137))
    running = totals.evaluate(policy, 0.9, 0, new_share=share)
    assert totals.rows == frame.height
    assert [(t.name, t.fired) for t in running] == [(t.name, t.fired) for t in exact]
    for a, b in zip(running, exact, strict=True):
        if b.observed is None:
            assert a.observed is None, a.name
        elif a.name == "latency_p95_ratio":  # the sketch's quantiles: within the accuracy on each side
            assert a.observed == pytest.approx(b.observed, rel=2.5 * RELATIVE_ACCURACY)
        else:
            assert a.observed == pytest.approx(b.observed, rel=1e-9), a.name


def test_running_totals_hold_the_same_memory_however_long_the_run() -> None:
    """The point of them: a day of samples is counters and two fixed sketches, not the rows."""
    totals = RunningTriggers()
    totals.add(samples(1, 100))
    size = totals.old.ok_latency.counts.nbytes + totals.new.ok_latency.counts.nbytes
    for seed in range(2, 12):
        totals.add(samples(seed, 5000))
    assert totals.rows == 2 * (100 + 10 * 5000)
    assert totals.old.ok_latency.counts.nbytes + totals.new.ok_latency.counts.nbytes == size


def fired(totals: RunningTriggers, policy: Policy) -> dict[str, bool]:
    return {t.name: t.fired for t in totals.evaluate(policy, 0.9, 0)}


def test_a_latency_breach_fires_only_once_it_held_on_breach_checks_checks_in_a_row() -> None:
    """As Flagger's threshold: one check over 2x (a burst of load) is not a rollback; a slower version
    stays over on every check and fires on the third."""
    policy = Policy(triggers=TriggerPolicy(breach_checks=3))
    totals = RunningTriggers()
    totals.add(samples(1, 400, new_scale=3.0))
    first = totals.evaluate(policy, 0.9, 0)
    p95 = next(t for t in first if t.name == "latency_p95_ratio")
    assert not p95.fired and p95.observed is not None and p95.observed > 2
    assert p95.explanation.endswith("over on 1 of the 3 checks in a row it must hold for")
    assert not fired(totals, policy)["latency_p95_ratio"]
    totals.add(samples(2, 4000))  # the burst is diluted: back under 2x, the streak starts again
    assert not fired(totals, policy)["latency_p95_ratio"] and totals.streaks["latency_p95_ratio"] == 0
    slow = RunningTriggers()
    slow.add(samples(3, 400, new_scale=3.0))
    assert [fired(slow, policy)["latency_p95_ratio"] for _ in range(3)] == [False, False, True]


def test_errors_fire_on_the_first_check_and_a_throughput_collapse_on_the_breach_checks_th() -> None:
    policy = Policy(triggers=TriggerPolicy(breach_checks=2))
    totals = RunningTriggers()
    totals.add(samples(4, 400, new_error=0.3))
    assert fired(totals, policy)["error_rate"]
    collapsed = RunningTriggers()
    collapsed.add(samples(5, 400, new_n=100))
    assert [fired(collapsed, policy)["throughput_ratio"] for _ in range(2)] == [False, True]


def test_a_p95_from_too_few_requests_is_not_measured() -> None:
    """50 requests leave two or three beyond the p95: one slow request is then the whole tail."""
    policy = Policy(triggers=TriggerPolicy(breach_checks=1, min_p95_samples=100))
    totals = RunningTriggers()
    totals.add(samples(6, 60, new_scale=3.0))
    p95 = next(t for t in totals.evaluate(policy, 0.9, 0) if t.name == "latency_p95_ratio")
    assert not p95.fired and p95.observed is None
    assert p95.explanation.startswith("not measured yet: ") and "of the 100 ok requests" in p95.explanation
    totals.add(samples(7, 60, new_scale=3.0))
    assert fired(totals, policy)["latency_p95_ratio"]
