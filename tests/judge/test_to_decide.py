"""How long to keep running: an INCONCLUSIVE verdict says, per unsure criterion, what would decide it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from engine.judge.policy import Policy, load_policy
from engine.judge.to_decide import more_evidence, samples_to_decide
from engine.judge.verdict import Verdict, judge_samples

T0 = dt.datetime(2025, 8, 1, 12, 0, 0)


def unpaired(n: int, factor: float, seed: int, seconds: float = 60.0) -> pl.DataFrame:
    """Old and new as independent lognormal samples over ``seconds`` (no request_id)."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64(T0, "us") + (np.arange(n) * (seconds * 1e6 / n)).astype("timedelta64[us]")
    frames = [
        pl.DataFrame({"ts": ts, "version": v, "latency_ms": rng.lognormal(1.0, 0.3, n) * f, "ok": True})
        for v, f in (("old", 1.0), ("new", factor))
    ]
    return pl.concat(frames).with_columns(pl.lit("e").alias("endpoint"), pl.lit(True).alias("match"))


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def judge(frame: pl.DataFrame, policy: Policy, rate: float | None = 0.9) -> Verdict:
    return judge_samples(frame, policy, validation_success_rate=rate, bucket_s=1.0)


def test_the_square_root_law() -> None:
    """Half-width 0.05 on the threshold's side, 0.025 from it: four times the samples, three more."""
    assert samples_to_decide(0.075, 0.025, 0.125, 0.10, "<=", 1000) == 3000
    assert samples_to_decide(0.125, 0.075, 0.175, 0.10, "<=", 1000) == 3000  # the failing side too
    assert samples_to_decide(-0.045, -0.07, -0.02, -0.05, ">=", 100) == 2400
    assert samples_to_decide(0.10, 0.05, 0.15, 0.10, "<=", 1000) is None  # right on the limit


def test_seconds_follow_the_runs_rate() -> None:
    more = more_evidence("latency_increase", 0.075, 0.025, 0.125, 0.10, "<=", 1000, 100.0, 200)
    assert more.more_samples == 3000 and more.more_seconds == pytest.approx(300.0)
    assert "5 min" in more.explanation
    few = more_evidence("latency_increase", 0.0, -0.01, 0.01, 0.10, "<=", 50, 10.0, 200)
    assert few.more_samples == 150  # below the policy's minimum: at least the difference


def test_inconclusive_verdict_says_how_much_more_and_that_much_more_decides(policy: Policy) -> None:
    """+6 % latency at 800 samples straddles the 10 % margin; run as long as the verdict says, and
    most runs decide (GO) where most runs of the original length did not."""
    first = [judge(unpaired(800, 1.06, seed), policy) for seed in range(8)]
    unsure = [v for v in first if v.verdict == "INCONCLUSIVE"]
    assert len(unsure) >= 5
    for v in unsure:  # one entry per unsure criterion
        assert [m.criterion for m in v.to_decide] == [c.name for c in v.criteria if c.holds_up_go]
    wanted = [m for v in unsure for m in v.to_decide if m.criterion == "latency_increase"]
    assert len(wanted) >= 5
    assert all(m.more_samples and m.more_samples > 0 and m.more_seconds for m in wanted)
    more = int(np.median([m.more_samples for m in wanted]))
    decided = [judge(unpaired(800 + more, 1.06, 100 + seed), policy).verdict for seed in range(8)]
    assert decided.count("GO") >= 5, (more, decided)


def test_decided_verdicts_have_nothing_to_decide_and_validation_is_not_a_matter_of_time(
    policy: Policy,
) -> None:
    assert judge(unpaired(3000, 1.0, 1), policy).to_decide == []
    v = judge(unpaired(3000, 1.0, 1), policy, None)
    assert v.verdict == "INCONCLUSIVE"
    [m] = v.to_decide
    assert m.criterion == "validation_success_rate" and m.more_samples is None and "validat" in m.explanation


def test_a_verdict_stored_before_the_field_existed_still_loads(policy: Policy) -> None:
    data = judge(unpaired(300, 1.0, 2), policy).model_dump(mode="json")
    del data["to_decide"], data["duration_s"], data["paired"]
    for key in ("max_p95_increase", "max_p99_increase", "min_tail_samples", "max_latency_drift"):
        del data["policy"]["statistics"][key]
    del data["policy"]["statistics"]["min_samples_per_endpoint"]
    for c in data["criteria"]:
        del c["method"], c["endpoint"], c["role"]
    old = Verdict.model_validate(data)
    assert old.to_decide == [] and not old.paired
    assert all(c.role == "primary" and c.endpoint is None for c in old.criteria)


def test_the_cli_prints_what_would_decide(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    path = tmp_path / "s.parquet"
    unpaired(800, 1.06, 0).write_parquet(path)
    policy = tmp_path / "policy.toml"
    policy.write_text("[parallel_run]\nbucket_s = 1\n", encoding="utf-8")
    assert main(["judge", "--samples", str(path), "--validation-rate", "0.9", "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "verdict: INCONCLUSIVE" in out
    assert "to decide, keep running:" in out and "latency_increase: about " in out and " more samples" in out
    assert "latency_p99_increase [guard]: " in out  # 8 requests beyond p99: it guards, it is not proven
