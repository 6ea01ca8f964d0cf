"""Hold, second-operator approval and re-judgement, on a system judged from a stored run."""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine import services
from engine.access import AccessDeniedError
from engine.deploy.gateway import SAMPLE_COLUMNS
from engine.errors import InputError, NotFoundError, StateConflictError
from engine.governance.approvals import require_approval
from engine.judge.policy import load_policy
from engine.judge.samples import CANONICAL
from engine.judge.verdict import Trigger, judge_samples
from engine.rollback.manager import rollback_on_trigger
from engine.store import connect
from engine.store import deployments as store
from engine.workspace import Workspace
from tests.judge.test_verdict import samples

SYSTEM = "todo_api_system"
RUN = "parallel-test-1"


def judged(ws: Workspace, latency_factor: float = 1.02, expect: str = "GO") -> Workspace:
    """SYSTEM judged on a stored 60 s run whose p50 is ~4 % slower: GO under the seed's +10 %."""
    frame = samples(latency_factor=latency_factor).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    # in the gateway's segment schema: old is served (blue, primary), new mirrored (green)
    frame = (
        frame.with_columns(
            pl.lit(RUN).alias("run_id"),
            pl.int_range(pl.len()).over("version").alias("request_id"),
            pl.when(pl.col("version") == "old").then(pl.lit("blue")).otherwise(pl.lit("green")).alias("slot"),
            (pl.col("version") == "old").alias("primary"),
            pl.when(pl.col("ok")).then(200).otherwise(500).alias("status"),
            pl.lit("d").alias("digest"),
            pl.lit(None, pl.String).alias("body"),
            pl.lit(None, pl.Float64).alias("service_ms"),
            pl.lit(None, pl.Float64).alias("cpu_wait_ms"),
        )
        .with_columns(((pl.col("request_id") % 2 == 0) == (pl.col("version") == "old")).alias("called_first"))
        .select(list(SAMPLE_COLUMNS))
        .cast(SAMPLE_COLUMNS)
    )
    folder = ws.samples_dir / f"system={SYSTEM}" / f"run={RUN}"
    folder.mkdir(parents=True)
    frame.write_parquet(folder / "part-000001.parquet")
    policy = load_policy()
    verdict = judge_samples(
        frame.select(list(CANONICAL)).with_columns(pl.col("ts").dt.replace_time_zone(None)),
        policy,
        validation_success_rate=0.9,
        bucket_s=1.0,
    )
    assert verdict.verdict == expect, verdict.reasons
    with connect(ws.db_path) as con:
        con.execute(
            "INSERT INTO runs (id, system, kind, status, actor, started_at, duration_s, bucket_s, rps) "
            "VALUES (?, ?, 'parallel', 'completed', 'lead', now(), 60, 1, 50)",
            [RUN, SYSTEM],
        )
        store.insert_verdict(con, SYSTEM, RUN, json.loads(verdict.model_dump_json()), "lead")
        con.execute("UPDATE systems SET state = 'judged' WHERE name = ?", [SYSTEM])
    return ws


def test_a_hold_freezes_the_system_until_an_operator_releases_it(sample_ws: Workspace) -> None:
    ws = judged(sample_ws)
    hold = services.hold(
        ws, SYSTEM, actor="lead", reason="orders table migrated, cannot undo", owner="dba-team"
    )
    assert hold.owner == "dba-team" and hold.state == "judged"
    assert services.holds(ws)["system"].to_list() == [SYSTEM]
    for action in (
        lambda: services.promote(ws, SYSTEM, actor="lead", reason="GO"),
        lambda: services.rollback(ws, SYSTEM, actor="lead", reason="changed my mind"),
        lambda: services.parallel_run(ws, SYSTEM, actor="lead", duration_s=1, bucket_s=1, rps=1),
    ):
        with pytest.raises(StateConflictError, match="on HOLD .*owner dba-team.*cannot undo"):
            action()
    with pytest.raises(StateConflictError, match="already held"):
        services.hold(ws, SYSTEM, actor="tester", reason="again")
    with pytest.raises(AccessDeniedError):
        services.release(ws, SYSTEM, actor="a-viewer", reason="let me")
    with pytest.raises(InputError, match="--reason"):
        services.release(ws, SYSTEM, actor="lead", reason=" ")
    services.release(ws, SYSTEM, actor="tester", reason="data checked, carry on")
    assert services.holds(ws).is_empty()
    assert services.status(ws, SYSTEM).state == "judged"  # resumes where it was held
    actions = services.list_events(ws, system=SYSTEM, action_prefix="hold:")["action"].to_list()
    assert actions == ["hold:released", "hold:placed"]
    with pytest.raises(StateConflictError, match="not on hold"):
        services.release(ws, SYSTEM, actor="tester", reason="twice")


def test_a_trigger_holds_instead_of_rolling_back_when_the_policy_says_so(sample_ws: Workspace) -> None:
    ws = judged(sample_ws)
    policy = load_policy()
    policy = policy.model_copy(
        update={"governance": policy.governance.model_copy(update={"hold_on_trigger": True})}
    )
    fired = Trigger(
        name="error_rate", fired=True, observed=0.2, threshold=0.05, explanation="error rate 20 %"
    )
    outcome = rollback_on_trigger(
        ws, SYSTEM, fired, "the monitor window", policy=policy, progress=lambda *a: None
    )
    assert outcome.state == "judged" and not outcome.failure_document
    held = services.holds(ws).row(0, named=True)
    assert held["placed_by"] == "trigger:error_rate" and "error rate 20 %" in held["reason"]
    assert not list(ws.failures_dir.glob("*.json"))  # nothing was rolled back
    # a second trigger while held is recorded, and still does not roll back
    again = rollback_on_trigger(
        ws, SYSTEM, fired, "the monitor window", policy=load_policy(), progress=lambda *a: None
    )
    assert again.state == "judged"
    assert "while held" in services.list_events(ws, system=SYSTEM, action="trigger:error_rate")["reason"][0]


def test_promotion_needs_a_second_operator_when_the_policy_requires_it(sample_ws: Workspace) -> None:
    ws = judged(sample_ws)
    with connect(ws.db_path) as con:
        verdict = store.latest_verdict(con, SYSTEM)
        with pytest.raises(StateConflictError, match="second operator's approval"):
            require_approval(con, SYSTEM, verdict, "lead")
    assert services.list_events(ws, system=SYSTEM, action="approval:requested").height == 1
    services.approve(ws, SYSTEM, actor="lead", reason="I judged it myself")
    with connect(ws.db_path) as con, pytest.raises(StateConflictError):
        require_approval(con, SYSTEM, verdict, "lead")  # approving your own promotion does not count
    approved = services.approve(ws, SYSTEM, actor="tester", reason="read the evidence, GO")
    assert set(approved["actor"]) == {"lead", "tester"}
    with connect(ws.db_path) as con:
        require_approval(con, SYSTEM, verdict, "lead")  # passes now
    with pytest.raises(AccessDeniedError):
        services.approve(ws, SYSTEM, actor="a-viewer", reason="me too")


def test_approval_of_a_verdict_that_is_not_go_is_refused(sample_ws: Workspace) -> None:
    ws = judged(sample_ws, latency_factor=1.5, expect="NO_GO")
    with pytest.raises(StateConflictError, match="only a GO can be approved"):
        services.approve(ws, SYSTEM, actor="tester", reason="looks fine")


def test_rejudge_weighs_the_same_run_under_another_policy(sample_ws: Workspace) -> None:
    ws = judged(sample_ws)
    result = services.rejudge(
        ws, SYSTEM, actor="lead", overrides={"rule.max_latency_increase": 0.01}, reason="what if 1 %?"
    )
    assert result.run_id == RUN and result.original.verdict == "GO"
    assert result.rejudged.verdict == "NO_GO"  # +4 % [+1.5, +6.7] does not fit under +1 %
    assert [c.what for c in result.policy_changes] == ["rule.max_latency_increase"]
    changes = {c.what: (c.before, c.after) for c in result.outcome_changes}
    assert changes["verdict"] == ("GO", "NO_GO")
    assert changes["latency_increase.passed"] == (True, False)
    # the same evidence: sample sizes and observed values are the original's
    lat = {c.name: c for c in result.rejudged.criteria}["latency_increase"]
    assert lat.observed == pytest.approx(
        {c.name: c for c in result.original.criteria}["latency_increase"].observed
    )
    # kept beside the original, not instead of it: Promote still sees the GO
    assert services.status(ws, SYSTEM).verdict["verdict"] == "GO"
    recorded = services.rejudgements(ws, SYSTEM).row(0, named=True)
    assert recorded["actor"] == "lead" and json.loads(recorded["after"])["verdict"] == "NO_GO"

    looser = services.rejudge(
        ws, SYSTEM, actor="lead", overrides={"statistics.min_samples_per_version": 10_000}
    )
    assert looser.rejudged.verdict == "INCONCLUSIVE"  # 3000 per side is now too few


def test_rejudge_refuses_bad_settings_and_missing_runs(sample_ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="no recorded verdict"):
        services.rejudge(sample_ws, SYSTEM, actor="lead")
    ws = judged(sample_ws)
    with pytest.raises(InputError, match="rule.no_such"):
        services.rejudge(ws, SYSTEM, actor="lead", overrides={"rule.no_such": 1})
    with pytest.raises(InputError, match="statistics.confidence_level"):
        services.rejudge(ws, SYSTEM, actor="lead", overrides={"statistics.confidence_level": "very"})
    assert services.rejudgements(ws, SYSTEM).is_empty()  # nothing recorded for refused requests
