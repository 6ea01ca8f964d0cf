"""The risk register measured from a recorded history (tests/histories.py): each risk's evidence has one
right answer, and a cut-off before the event must not see it."""

from __future__ import annotations

import json

import pytest

from engine import services
from engine.cli import main
from engine.errors import InputError
from engine.risks.catalog import DEFAULT_RISKS, load_catalog
from engine.risks.register import risk_register
from engine.store import connect
from engine.workspace import Workspace
from tests.histories import at, write_history


@pytest.fixture
def history(sample_ws: Workspace) -> Workspace:
    return write_history(sample_ws)


def by_id(ws: Workspace, as_of=None) -> dict:
    return {r.id: r for r in services.risks(ws, as_of)}


def test_the_register_is_the_seeds_matrix() -> None:
    catalog = load_catalog()
    assert [(r.level, r.description, r.owner) for r in catalog.risks] == [
        ("high", "Data loss during migration", "DevOps"),
        ("high", "Performance regression", "Performance Team"),
        ("medium", "Import errors in new code", "Dev Team"),
        ("medium", "Team knowledge gap", "Tech Lead"),
        ("low", "Rollback complexity", "DevOps"),
    ]
    assert catalog.risks[1].mitigation == "Extensive benchmarking, gradual rollout"
    books = {p.id: [s.text for s in p.steps] for p in catalog.playbooks}
    assert books["data_corruption"][0] == "Immediately stop migration"
    assert books["performance_degradation"][-1] == "Re-benchmark before continuing"
    assert books["mass_failure"][-1] == "Restart migration with smaller batch"
    assert all(len(steps) == 6 for steps in books.values())
    assert catalog.cleanup is not None and len(catalog.cleanup.steps) == 12
    assert {s.group for s in catalog.cleanup.steps} == {"code", "infrastructure", "documentation"}


def test_a_latency_no_go_materialises_performance_regression_with_that_system(history: Workspace) -> None:
    before = by_id(history, at(1, 10))  # the NO_GO verdict comes at day 1, 10:15
    assert not before["performance_regression"].materialised
    assert before["performance_regression"].systems == []

    risk = by_id(history, at(2, 0))["performance_regression"]
    assert risk.materialised and risk.level == "high" and risk.owner == "Performance Team"
    assert risk.systems == ["hello_world_api"]  # todo_api_system's verdict is GO
    text = " ".join(risk.evidence)
    assert "1 of 2 judged" in text
    assert "latency change +50.0% (limit <= +10.0%)" in text
    assert "throughput change -30.0% (limit >= -5.0%)" in text


def test_a_no_go_within_the_latency_and_throughput_limits_is_not_a_regression(sample_ws: Workspace) -> None:
    with connect(sample_ws.db_path) as con:
        result = {
            "verdict": "NO_GO",
            "new_better": True,
            "criteria": [
                {"name": "latency_increase", "observed": 0.02, "threshold": 0.1, "passed": True},
                {"name": "throughput_change", "observed": 0.0, "threshold": -0.05, "passed": True},
                {"name": "error_rate_increase", "observed": 0.2, "threshold": 0.01, "passed": False},
            ],
            "triggers": [{"name": "error_rate", "fired": True, "explanation": "new error rate 20 %"}],
        }
        con.execute(
            "INSERT INTO verdicts (ts, system, run_id, verdict, new_better, actor, result) "
            "VALUES (now(), 'todo_api_system', 'r2', 'NO_GO', true, 'ann', ?)",
            [json.dumps(result)],
        )
    risk = by_id(sample_ws)["performance_regression"]
    assert not risk.materialised and risk.systems == []
    assert "None of the 1 judged" in risk.evidence[0]


def test_data_loss_from_an_unverified_rollback_and_a_missing_backup(history: Workspace) -> None:
    risk = by_id(history, at(2, 0))["data_loss"]
    assert risk.materialised and risk.systems == ["simple_rest_api"]
    assert "could not verify the old version" in risk.evidence[0]
    assert "restored by cat after 30 min" in risk.evidence[0]

    # while simple_rest_api is deployed (day 1, 11:15) it has no backup: that alone is the risk
    during = by_id(history, at(1, 11, 15))["data_loss"]
    assert during.materialised and during.systems == ["simple_rest_api"]
    assert "simple_rest_api is green_deployed but has no backup" in " ".join(during.evidence)
    (history.backups_dir / f"simple_rest_api_{at(1, 0):%Y%m%d}").mkdir(parents=True)
    covered = by_id(history, at(1, 11, 15))["data_loss"]
    assert not covered.materialised
    assert "every deployed system (1) has a backup" in covered.evidence[0]


def test_mismatched_responses_are_data_loss_evidence(sample_ws: Workspace) -> None:
    result = {
        "verdict": "NO_GO",
        "new_better": False,
        "criteria": [
            {
                "name": "mismatch_rate",
                "observed": 0.04,
                "threshold": 0.01,
                "passed": False,
                "conclusive": True,
                "detail": {"mismatches": 12.0, "compared": 300.0},
            }
        ],
    }
    with connect(sample_ws.db_path) as con:
        con.execute(
            "INSERT INTO verdicts (ts, system, run_id, verdict, new_better, actor, result) "
            "VALUES (now(), 'hello_world_api', 'r7', 'NO_GO', false, 'ann', ?)",
            [json.dumps(result)],
        )
    risk = by_id(sample_ws)["data_loss"]
    assert risk.materialised and risk.systems == ["hello_world_api"]
    assert (
        "4.0% of responses differed from the old version (12 of 300 compared) on run r7" in risk.evidence[0]
    )


def test_rollback_complexity_counts_rollbacks_and_the_one_that_needed_a_person(history: Workspace) -> None:
    early = by_id(history, at(1, 11))["rollback_complexity"]  # hello_world_api's automatic rollback only
    assert not early.materialised
    assert early.evidence[0].startswith("1 rollback(s) so far")
    assert "without help" in early.evidence[1]

    risk = by_id(history, at(2, 0))["rollback_complexity"]
    assert risk.materialised and risk.systems == ["simple_rest_api"]
    assert risk.evidence[0] == (
        "2 rollback(s) so far (the seed's target: fewer than 5): hello_world_api, simple_rest_api."
    )
    assert "simple_rest_api (restored by cat)" in risk.evidence[1]


def test_import_errors_are_the_new_codes_and_the_old_codes_are_its_own(history: Workspace) -> None:
    """A v1 system failing its own import check is the old code's bug, not an import error in new code:
    listed apart, never materialising the risk or naming the system under it."""
    with connect(history.db_path) as con:
        rows = con.execute("SELECT system, checks FROM validations WHERE blueprint_version = 'v1'").fetchall()
    failing = sorted(
        s for s, checks in rows if any(c["name"] == "import" and not c["passed"] for c in json.loads(checks))
    )
    assert failing, "the sample fleet carries import defects"
    risk = by_id(history, at(2, 0))["import_errors"]
    assert risk.materialised  # file_upload_api, converted, fails the v2 gate: that is new code
    assert risk.systems == ["file_upload_api"]
    assert any(
        "1 of 4 converted system(s) fail the v2 gate: file_upload_api (smoke)" in e for e in risk.evidence
    )
    assert not any("v1" in e for e in risk.evidence)
    assert risk.old_system[0].startswith(
        f"{len(failing)} of 52 old (v1) system(s) fail their own import check"
    )
    assert "not caused by it" in risk.old_system[0]


def test_old_import_defects_alone_do_not_materialise_the_risk(sample_ws: Workspace) -> None:
    risk = by_id(sample_ws)["import_errors"]  # only the v1 validation has run: nothing converted yet
    assert not risk.materialised and risk.systems == []
    assert risk.old_system  # the old code's defects are still on the record
    post = services.post_mortem(sample_ws, "migration")
    assert "import_errors" not in {r.id for r in post.risks}
    assert any(
        line.startswith("Found in the old systems, not caused by the migration") for line in post.summary()
    )


def test_a_v1_defect_carried_over_unchanged_is_the_old_codes_not_the_migrations(sample_ws: Workspace) -> None:
    """Behaviour is preserved, so a system broken in v1 fails the gate in v2 too: where v2 answers as v1
    does (import and smoke fail alike, no equivalence failure) and its conversion error is v1's own call to
    nothing, that is the old code's defect on the record, not the migration's risk; where v2 answers
    differently (todo_task_tracker: v1's RPC layer refuses a message its v2 recipe fails on), it is."""
    carried = ["notification_api", "todo_sync_engine"]  # a module that does not import; a call to nothing
    names = [*carried, "todo_task_tracker"]
    services.convert_systems(sample_ws, names, actor="tester")
    gate = services.validate_systems_v2(sample_ws, names, actor="tester")
    failed = {s.system: {c.name for c in s.failures()} for s in gate.systems}
    assert "equivalence" in failed["todo_task_tracker"]
    assert all(failed[n] and "equivalence" not in failed[n] for n in carried)
    risk = by_id(sample_ws)["import_errors"]
    assert risk.materialised and risk.systems == ["todo_task_tracker"]
    assert not any("conversion error" in e for e in risk.evidence)  # todo_sync_engine's is v1's
    [line] = [o for o in risk.old_system if "carried over" in o]
    assert line.startswith("2 converted system(s) fail the v2 gate as they fail in v1")
    assert all(name in line for name in carried)


def test_knowledge_gap_names_components_whose_code_is_kept_as_it_is(sample_ws: Workspace) -> None:
    before = by_id(sample_ws)["knowledge_gap"]
    assert not before.materialised and "No system converted yet" in before.evidence[0]
    services.convert_systems(sample_ws, ["todo_api_system", "auth_token_api"], actor="tester")
    risk = by_id(sample_ws)["knowledge_gap"]
    assert risk.materialised and risk.systems == ["auth_token_api"]  # its Authenticator has no recipe
    assert "1 component(s) in 1 of 2 converted system(s) run their v1 code as it is" in risk.evidence[0]
    assert "auth_token_api: 1 hosted (auth)." in risk.evidence


def test_the_register_can_be_restricted_to_some_systems(history: Workspace) -> None:
    with connect(history.db_path) as con:
        views = {r.id: r for r in risk_register(con, history, at(2, 0), systems=["todo_api_system"])}
    assert not views["performance_regression"].materialised
    assert not views["data_loss"].materialised
    assert views["rollback_complexity"].evidence == ["No rollback yet."]


def test_a_workspace_register_replaces_the_bundled_one(sample_ws: Workspace) -> None:
    text = DEFAULT_RISKS.read_text().replace('owner = "Performance Team"', 'owner = "SRE on call"')
    (sample_ws.root / "risks.toml").write_text(text)
    assert by_id(sample_ws)["performance_regression"].owner == "SRE on call"


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (('level = "high"', 'level = "extreme"'), "risks[0].level"),
        (('playbook = "data_corruption"', 'playbook = "nope"'), "risks"),
        (('id = "isolate_systems"', 'id = "stop_migration"'), "playbooks[0].steps"),
        (('id = "data_loss"', 'id = "data loss"'), "risks[0].id"),
    ],
)
def test_a_bad_workspace_register_names_the_file_and_the_field(
    sample_ws: Workspace, change: tuple[str, str], location: str
) -> None:
    path = sample_ws.root / "risks.toml"
    path.write_text(DEFAULT_RISKS.read_text().replace(*change, 1))
    with pytest.raises(InputError) as err:
        services.risks(sample_ws)
    assert err.value.source == str(path)
    assert err.value.location == location


def test_cli_risks_json_lists_what_materialised(
    history: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--workspace", str(history.root), "risks", "--as-of", at(2, 0).isoformat(), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"performance_regression", "data_loss", "rollback_complexity"} <= set(data["materialised"])
    regression = next(r for r in data["risks"] if r["id"] == "performance_regression")
    assert regression["systems"] == ["hello_world_api"]
    assert [o["area"] for o in data["optimisations"]] == [
        "Buffer Sizes",
        "Concurrency",
        "Batch Sizes",
        "Checkpoint Frequency",
    ]
    code = main(["--workspace", str(history.root), "risks", "--as-of", "yesterday"])
    assert code == 2 and "--as-of" in capsys.readouterr().err
