"""KPIs, timeline and standup computed from a recorded history with known answers (tests/histories.py)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from engine import services
from engine.workspace import Workspace
from tests.histories import D, at, write_history


@pytest.fixture
def history(sample_ws: Workspace) -> Workspace:
    return write_history(sample_ws)


def test_metrics_are_measured_from_the_history(history: Workspace) -> None:
    m = services.kpis(history, at(2, 0))
    assert m.systems_total == 52
    assert m.systems_migrated == 1  # simple_rest_api was promoted but rolled back
    assert m.rollback_count == 2
    assert m.failed_migrations == 1
    assert m.validation_success_rate == pytest.approx(0.75)
    assert m.systems_validated_v2 == 4
    # only migrated systems' verdicts count: the NO_GO of hello_world_api does not
    assert m.avg_latency_change == pytest.approx(0.04)
    # throughput is capacity: todo_api_system's newest valid probe (+30 %), not its verdict's +25 %
    # (a mirrored run offers both versions the same load), nor hello_world_api's (not migrated)
    assert m.avg_throughput_improvement == pytest.approx(0.30)
    assert m.systems_with_capacity == 1
    assert m.avg_migration_time_hours == pytest.approx(1.0)
    assert m.total_downtime_minutes == pytest.approx(30 + 1 / 60)
    assert m.migration_rate == pytest.approx(1 / 2)  # two days since the plan start


def test_success_score_is_the_seeds_formula(history: Workspace) -> None:
    m = services.kpis(history, at(2, 0))
    parts = {p.name: p.value for p in m.score_parts()}
    assert parts == pytest.approx(
        {
            "progress": 1 / 52,
            "validation": 0.75,
            "rollbacks": 1 - 2 / 1,
            "failures": 0.5,
            "throughput": 1.0,
            "downtime": 0.8,
        }
    )
    assert m.success_score == pytest.approx(sum(parts.values()) / 6)
    met = {t.field: t.met for t in m.targets()}
    assert met == {
        "validation_success_rate": False,
        "rollback_count": True,
        "failed_migrations": False,
        "avg_throughput_improvement": True,
        "avg_latency_change": True,
        "avg_migration_time_hours": True,
        "total_downtime_minutes": False,
    }


def test_an_average_of_nothing_is_not_measured_yet_anywhere_it_is_shown(sample_ws: Workspace) -> None:
    """Before any v2 validation, verdict, capacity probe or migration, the KPIs that average them are
    "not measured yet", never a made-up 0 that meets its target (the standup read "+0.0 %  met")."""
    from engine.cli import _kpi_lines
    from engine.report.document import _target_rows

    m = services.kpis(sample_ws)
    unmeasured = {t.field for t in m.targets() if not t.measured}
    assert unmeasured == {
        "validation_success_rate",
        "avg_throughput_improvement",
        "avg_latency_change",
        "avg_migration_time_hours",
    }
    assert all(
        not t.met and t.shown() == t.verdict() == "not measured yet" for t in m.targets() if not t.measured
    )
    assert [t.verdict() for t in m.targets() if t.measured] == ["met", "met", "met"]  # counts of nothing: 0
    latency = next(line for line in _kpi_lines(m) if "Latency change" in line)
    assert latency.count("not measured yet") == 2 and "+0.0" not in latency and "NOT MET" not in latency
    digest = services.standup_digest(sample_ws).markdown
    assert "| Latency change | not measured yet | < +10.0% | not measured yet | – |" in digest
    post = services.post_mortem(sample_ws, "migration")
    [row] = [r for r in _target_rows(post) if r[0] == "Latency change"]
    assert row[1] == row[3] == "not measured yet"


def test_metrics_as_of_an_earlier_moment_ignore_what_came_later(history: Workspace) -> None:
    first_evening = services.kpis(history, at(0, 23))
    evening = first_evening
    assert (evening.systems_migrated, evening.rollback_count, evening.failed_migrations) == (1, 0, 0)
    assert first_evening.total_downtime_minutes == pytest.approx(1 / 60)
    assert first_evening.migration_rate == pytest.approx(1.0)  # at least one day elapsed
    morning = services.kpis(history, at(0, 11))
    assert morning.systems_migrated == 0
    assert morning.validation_success_rate == pytest.approx(1.0)  # file_upload_api not validated yet


def test_timeline_forecasts_from_the_measured_rate(history: Workspace) -> None:
    view = services.overview(history, at(2, 0))
    fc = view.timeline.forecast
    assert fc.planned_finish == (D + dt.timedelta(days=20)).date()  # 3 d + 1 w + 1 w + 3 d
    assert fc.remaining == 51
    assert fc.forecast_finish == (at(2, 0) + dt.timedelta(days=51 / 0.5)).date()
    assert fc.slip_days == 102 + 2 - 20
    pilot = view.timeline.phases[0]
    assert (pilot.systems, pilot.migrated, pilot.actual_start) == (3, 1, at(0, 10))
    assert pilot.actual_end is None
    burn = view.burn_up
    assert burn["planned"].to_list()[:3] == [1, 2, 3]  # pilot: one system a day
    assert burn["actual"].to_list()[:4] == [1, 1, 1, None]  # day 3 is after as_of
    assert burn["planned"].max() == 52
    todo = view.schedule.filter(pl.col("name") == "todo_api_system").row(0, named=True)
    assert todo["migrated_at"] == at(0, 12) and todo["state"] == "done"


def test_standup_lists_changes_blockers_and_next_due(history: Workspace) -> None:
    view = services.overview(history, at(1, 18))
    changes = view.changes
    assert changes["what"].to_list() == [
        "rolled back",
        "trigger fired, emergency",
        "promoted",
        "trigger fired, rolled back",
        "NO_GO verdict",
    ]
    assert "todo_api_system" not in changes["system"].to_list()  # promoted more than 24 h earlier
    kinds = {(b.system, b.kind) for b in view.blockers}
    assert ("file_upload_api", "validation") in kinds
    detail = next(b.detail for b in view.blockers if b.system == "file_upload_api")
    assert "smoke" in detail and "no reply" in detail
    assert view.next_due["name"].to_list()[0] == "hello_world_api"
    assert view.yesterday.systems_migrated == 1
    # a rolled-back system is not migrated and waits for a new attempt: a blocker, with why
    back = next(b for b in view.blockers if b.system == "hello_world_api")
    assert back.kind == "rolled back" and back.state == "rolled_back"
    assert back.detail.startswith("on ") and "by trigger:error_rate" in back.detail
    assert "Waiting for a new attempt" in back.detail
    assert view.metrics.rollback_count - view.yesterday.rollback_count == 2


def test_emergency_is_a_blocker_until_resolved(history: Workspace) -> None:
    view = services.overview(history, at(1, 12, 15))
    emergencies = [(b.system, b.kind) for b in view.blockers if b.kind == "emergency"]
    assert emergencies == [("simple_rest_api", "emergency")]
    assert view.metrics.total_downtime_minutes == pytest.approx(15 + 1 / 60)


def test_plan_start_is_a_recorded_setting(sample_ws: Workspace) -> None:
    services.set_plan_start(sample_ws, dt.date(2027, 3, 1), actor="lead", reason="after the freeze")
    assert services.overview(sample_ws).plan.start_date == dt.date(2027, 3, 1)
    event = services.list_events(sample_ws, action="plan:start_date").row(0, named=True)
    assert (event["actor"], event["reason"]) == ("lead", "after the freeze")
    assert json.loads(event["after"]) == {"start_date": "2027-03-01"}


def test_kpis_and_events_from_the_cli(history: Workspace, tmp_path, capsys) -> None:
    from engine.cli import main

    assert main(["--workspace", str(history.root), "--json", "kpis", "--as-of", at(2, 0).isoformat()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["systems_migrated"] == 1 and len(out["score_parts"]) == 6
    csv = tmp_path / "audit.csv"
    args = ["--workspace", str(history.root), "events", "--action-prefix", "state:"]
    args += ["--since", D.date().isoformat()]
    assert main([*args, "--csv", str(csv)]) == 0
    frame = pl.read_csv(csv)
    assert frame.height == 15 and set(frame["action"].str.slice(0, 6)) == {"state:"}
    assert main(["--workspace", str(history.root), "kpis", "--as-of", "yesterday"]) == 2


def test_a_viewer_cannot_move_the_plan(sample_ws: Workspace) -> None:
    from engine.errors import AccessDeniedError

    before = (sample_ws.root / "plan.toml").exists()
    with pytest.raises(AccessDeniedError):
        services.set_plan_start(sample_ws, dt.date(2027, 3, 1), actor="a-viewer", reason="no")
    assert (sample_ws.root / "plan.toml").exists() == before
    assert services.list_events(sample_ws, action="plan:start_date").height == 0
