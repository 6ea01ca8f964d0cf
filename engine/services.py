"""The use cases: one function per button, shared by the pages and the CLI.

Each function opens the workspace's store for one unit of work, validates its
input before touching anything, and records who did what in the audit log in
the same transaction as the change. Pages and the CLI never talk to the store
or the file system directly. Every function that changes state is for
operators only (``@operator_only``, :mod:`engine.access`): the check is here,
so no page or script can skip it; and it is ``@changes_state``
(:mod:`engine.use_case`): once it changed something, the metrics snapshot
and the notification outbox catch up, by one list of hooks. Which use case
may start in which state is :func:`engine.state.available_actions`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from engine import access
from engine.access import Role, Roles, default_actor, operator_only
from engine.convert.converter import ConversionReport, convert_blueprint
from engine.convert.diagram import v1_dot, v2_dot
from engine.convert.probe import probe_code
from engine.convert.writer import finish_swap, stage_v2_system
from engine.deploy.warm import seconds_left
from engine.errors import BlueprintError, InputError, NotFoundError, StateConflictError
from engine.export import argo
from engine.fleet.catalog import Plan, load_plan, place_fleet
from engine.fleet.importer import ImportReport, Rejection, scan_fleet
from engine.governance.approvals import approvals as approvals_of
from engine.governance.approvals import grant
from engine.governance.hold import Hold, current_holds, place_hold, release_hold
from engine.governance.rejudge import REJUDGED, Rejudgement, apply_overrides
from engine.governance.rejudge import history as rejudge_history
from engine.governance.rejudge import record as record_rejudgement
from engine.governance.rejudge import rejudge as rejudge_run
from engine.judge.calibration import Calibration
from engine.judge.policy import DEFAULT_POLICY, Policy, load_policy
from engine.judge.samples import read_samples_file
from engine.judge.verdict import Verdict, judge_samples
from engine.judging import SOURCES as METRICS_SOURCES  # noqa: F401 - the CLI's choices
from engine.judging import (
    chain_seconds,
    judge_from_source,  # noqa: F401 - a use case, as the migration's
    latest_calibration,
    run_chain,
)
from engine.kpi.metrics import MigrationMetrics
from engine.kpi.overview import Overview, build_overview, metrics_as_of
from engine.kpi.plan_file import plan_path, workspace_plan, write_start_date
from engine.migration import (  # noqa: F401 - the migration's use cases are services too
    LiveRun,
    RunEvidence,
    RunResult,
    SystemStatus,
    available_now,
    calibrate,
    checklist,
    deploy,
    down,
    extend_run,
    measure_capacity,
    parallel_run,
    promote,
    recover,
    rollback,
    run_evidence,
    run_so_far,
    status,
    stop_run,
)
from engine.migration import judge as judge_system  # noqa: F401
from engine.models.blueprint_v1 import load_v1_blueprint
from engine.models.blueprint_v2 import load_v2_blueprint
from engine.models.common import MAX_BLUEPRINT_BYTES
from engine.models.validation import FleetValidation, SystemValidation
from engine.next_step import NextStep
from engine.next_step import next_step as step_for
from engine.notify import actions as notify
from engine.notify.digest import Digest
from engine.notify.digest import digest as digest_of
from engine.parallel.capacity import Capacity, latest_capacity
from engine.progress import Progress, no_progress
from engine.report import FORMATS as REPORT_FORMATS
from engine.report import PostMortem, Scope, parse_scope
from engine.report import file_name as report_file_name
from engine.report import render as render_report
from engine.report.collect import collect as collect_post_mortem
from engine.risks.catalog import DEFAULT_RISKS, load_catalog, risks_path
from engine.risks.optimise import Opportunity, find_opportunities
from engine.risks.playbooks import ChecklistView, StepView, checklist_views, record_tick
from engine.risks.register import RiskView, risk_register
from engine.state import Action, State, available_actions
from engine.store import backup as store_backup
from engine.store import connect, transaction
from engine.store import conversions as conversions_store
from engine.store import deployments as deployments_store
from engine.store import events as events_store
from engine.store import recorded_requests as recorded_store
from engine.store import systems as systems_store
from engine.store import validations as validations_store
from engine.store.db import first_row
from engine.store.db import one_connection as _one_connection
from engine.store.operations import operation
from engine.store.samples import samples_version  # noqa: F401 - pages key cached views on it
from engine.store.version import files_version as store_files_version
from engine.store.version import store_version
from engine.use_case import changes_state
from engine.validate.gate import gate_outcome, validate_v2
from engine.validate.live import recorded_for
from engine.validate.v1 import validate_v1_systems
from engine.workspace import (
    DEFAULT_PLAN,
    SAMPLE_FLEET_DIR,
    Workspace,
    check_system_name,
    safe_child,
)

# --------------------------------------------------------------------------- workspace


class InitResult(BaseModel):
    workspace: str
    created: bool
    imported: ImportReport
    v1_validation_success_rate: float


@changes_state
def init_workspace(
    ws: Workspace,
    fleet_dir: Path | None = None,
    *,
    actor: str | None = None,
    plan_path: Path = DEFAULT_PLAN,
    progress: Progress = no_progress,
) -> InitResult:
    """Create the workspace, import a fleet (the bundled sample by default) and validate it (v1).

    A new workspace gets a roles file naming ``actor`` (default: the OS user)
    as its first operator; initialising a workspace that has one already
    re-imports its fleet, which only an operator may do. A new workspace is
    only created for a plan and a fleet folder that load: a bad one leaves no
    half-made workspace behind.
    """
    actor = actor or default_actor()
    if not ws.exists():
        load_plan(plan_path)
        scan = scan_fleet(Path(fleet_dir or SAMPLE_FLEET_DIR))
        if not scan.loaded:
            detail = "; ".join(r.error for r in scan.rejected[:3]) or "no system folders found"
            raise InputError(scan.fleet_dir, "<folder>", "at least one loadable system folder", detail)
    if not access.ensure_roles_file(ws, first_operator=actor):
        access.require_operator(ws, actor, "re-initialise the workspace (re-import, re-validate)")
    return _init(ws, fleet_dir, actor=actor, plan_path=plan_path, progress=progress)


def _init(
    ws: Workspace, fleet_dir: Path | None, *, actor: str, plan_path: Path, progress: Progress
) -> InitResult:
    """Import and validate as ``actor``: an operator, or the engine itself on its first start."""
    created = not ws.exists()
    ws.ensure()
    report = import_fleet(ws, fleet_dir or SAMPLE_FLEET_DIR, actor=actor, plan_path=plan_path)
    validation = validate_v1(ws, report.loaded + report.updated, actor=actor, progress=progress)
    return InitResult(
        workspace=str(ws.root),
        created=created,
        imported=report,
        v1_validation_success_rate=validation.validation_success_rate,
    )


@changes_state
def ensure_initialised(ws: Workspace, *, actor: str = "switchyard", progress: Progress = no_progress) -> bool:
    """Initialise the workspace on the bundled sample fleet if it has no systems yet.

    Returns True when it did: this is what makes the app's first start need no
    manual step. The roles file is written first if missing, naming the OS
    user running the server (:func:`default_actor`) as the first operator.
    The engine does this on its own, as :func:`engine.access.engine_actor`
    named ``actor`` (no role of the workspace's needed).
    """
    access.ensure_roles_file(ws, first_operator=default_actor())
    if ws.exists():
        with connect(ws.db_path) as con:
            count = first_row(con, "SELECT count(*) FROM systems")
        if count and count[0] > 0:
            return False
    _init(ws, None, actor=access.engine_actor(actor), plan_path=DEFAULT_PLAN, progress=progress)
    return True


# --------------------------------------------------------------------------- inventory


@operator_only("import a fleet")
@changes_state
def import_fleet(
    ws: Workspace, fleet_dir: Path, *, actor: str | None = None, plan_path: Path = DEFAULT_PLAN
) -> ImportReport:
    """Load every system folder under ``fleet_dir`` into the inventory.

    Folders that do not load are rejected with a reason and change nothing;
    the good ones are stored in one transaction. Systems already past
    ``inventoried`` are not re-pointed at another folder. Raises InputError
    when no system at all could be loaded.
    """
    actor = actor or default_actor()
    plan = load_plan(plan_path)
    scan = scan_fleet(Path(fleet_dir))
    ws.ensure()
    with connect(ws.db_path) as con:
        existing = {r["name"]: r for r in systems_store.list_systems(con).iter_rows(named=True)}
        rejected = list(scan.rejected)
        accepted = []
        for system in scan.loaded:
            old = existing.get(system.name)
            if old and old["state"] != State.INVENTORIED and old["source_path"] != str(system.folder):
                rejected.append(
                    Rejection(
                        folder=system.name,
                        error=f"{system.folder}: system '{system.name}' is already in state "
                        f"'{old['state']}' from {old['source_path']}; importing would change a system "
                        "under migration",
                    )
                )
                continue
            accepted.append(system)
        if not accepted:
            detail = "; ".join(r.error for r in rejected[:3]) or "no system folders found"
            raise InputError(scan.fleet_dir, "<folder>", "at least one loadable system folder", detail)

        frame = pl.DataFrame(
            {
                "name": [s.name for s in accepted],
                "category": [s.category for s in accepted],
                "priority": ["P9"] * len(accepted),
                "phase": [0] * len(accepted),
                "migration_order": [0] * len(accepted),
                "description": [s.blueprint.system.description for s in accepted],
                "system_version": [s.blueprint.system.version for s in accepted],
                "created": [s.blueprint.system.created for s in accepted],
                "component_count": [len(s.blueprint.system.components) for s in accepted],
                "component_types": [[c.type for c in s.blueprint.system.components] for s in accepted],
                "source_path": [str(s.folder) for s in accepted],
            },
            schema=systems_store.SYSTEM_SCHEMA,
        )
        with transaction(con):
            systems_store.upsert_inventory(con, frame)
            _replace_placements(con, plan)
            events_store.append_events(
                con,
                [
                    {
                        "actor": actor,
                        "system": s.name,
                        "action": "imported" if s.name not in existing else "reimported",
                        "reason": f"fleet import from {scan.fleet_dir}",
                        "before": _inventory_fields(existing.get(s.name)),
                        "after": {"source_path": str(s.folder), "category": s.category},
                    }
                    for s in accepted
                ],
            )
    return ImportReport(
        fleet_dir=str(scan.fleet_dir),
        loaded=[s.name for s in accepted if s.name not in existing],
        updated=[s.name for s in accepted if s.name in existing],
        rejected=rejected,
        ignored=scan.ignored,
    )


def _inventory_fields(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: row[k] for k in ("source_path", "category", "state", "version")}


def _replace_placements(con: Any, plan: Plan) -> None:
    """Recompute priority, phase and order for the whole inventory (it changes with fleet size)."""
    current = systems_store.list_systems(con)
    placements = place_fleet(
        list(zip(current["name"], current["category"], current["component_count"], strict=True)), plan
    )
    systems_store.update_placements(
        con,
        pl.DataFrame(
            {
                "name": list(placements),
                "priority": [p.priority for p in placements.values()],
                "phase": [p.phase for p in placements.values()],
                "migration_order": [p.migration_order for p in placements.values()],
            }
        ),
    )


def inventory(ws: Workspace) -> pl.DataFrame:
    """Every system with its plan placement, state and latest v1 validation result."""
    with connect(ws.db_path) as con:
        return systems_store.inventory_with_validation(con)


def state_of(ws: Workspace, name: str) -> tuple[str, int]:
    """(state, version) of one system: one row, cheap enough for a page polling every second."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
    return str(row["state"]), int(row["version"])


def system_names(ws: Workspace) -> list[str]:
    """Names in migration order."""
    return inventory(ws)["name"].to_list()


@dataclass(frozen=True)
class SystemDetail:
    """What the detail view of one system shows."""

    row: dict[str, Any]
    blueprint_yaml: str
    v1_validation: SystemValidation | None


def system_detail(ws: Workspace, name: str) -> SystemDetail:
    """One system: its inventory row, its v1 blueprint text and its latest v1 checks."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        validation = validations_store.latest_validation(con, name, "v1")
    text = blueprint_text(Path(row["source_path"]) / "blueprint.yaml")
    return SystemDetail(row=row, blueprint_yaml=text or "", v1_validation=validation)


def blueprint_text(path: Path) -> str | None:
    """A blueprint file's text for display (None if absent): never more than a blueprint may hold,
    bytes that are not UTF-8 shown as U+FFFD, a file that cannot be read said in a YAML comment."""
    try:
        if not path.exists():
            return None
        size = path.stat().st_size
        if size > MAX_BLUEPRINT_BYTES:
            return f"# {path} is {size} bytes, more than a blueprint may hold ({MAX_BLUEPRINT_BYTES})"
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"# blueprint not readable at {path}: {exc.strerror}"


# --------------------------------------------------------------------------- validation


@operator_only("run the v1 validation")
@changes_state
def validate_v1(
    ws: Workspace,
    names: list[str] | None = None,
    *,
    actor: str | None = None,
    progress: Progress = no_progress,
) -> FleetValidation:
    """Run the v1 validator on ``names`` (all systems if None) and keep the results as history."""
    actor = actor or default_actor()
    for name in names or []:
        check_system_name(name)
    with connect(ws.db_path) as con:
        rows = systems_store.list_systems(con)
    known = dict(zip(rows["name"], rows["source_path"], strict=True))
    targets = list(known) if names is None else names
    unknown = [n for n in targets if n not in known]
    if unknown:
        raise NotFoundError(f"no system named {', '.join(repr(n) for n in unknown)} in the inventory")
    limits = load_policy(DEFAULT_POLICY).sandbox  # the fleet's modules run confined (engine.sandbox)
    results = validate_v1_systems([Path(known[name]) for name in targets], limits, progress)
    progress(len(targets), len(targets), "done")
    with connect(ws.db_path) as con, transaction(con):
        validations_store.record_validations(con, results, actor)
        events_store.append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": r.system,
                    "action": "validated:v1",
                    "reason": "v1 validation run",
                    "after": {
                        "passed": r.passed,
                        "validation_success_rate": round(r.validation_success_rate, 4),
                        "failed_checks": [c.name for c in r.failures()],
                    },
                }
                for r in results
            ],
        )
    return FleetValidation(blueprint_version="v1", systems=results)


# --------------------------------------------------------------------------- conversion (v1 -> v2)


def select_systems(
    ws: Workspace, names: list[str] | None = None, *, phase: int | None = None, all_systems: bool = False
) -> list[str]:
    """Resolve a CLI/page selection (names, a phase, or everything) to names in migration order."""
    frame = inventory(ws)
    if all_systems:
        return frame["name"].to_list()
    if phase is not None:
        chosen = frame.filter(pl.col("phase") == phase)["name"].to_list()
        if not chosen:
            raise InputError(
                "--phase", "value", f"a phase with systems ({sorted(set(frame['phase']))})", str(phase)
            )
        return chosen
    if not names:
        raise InputError("selection", "arguments", "one or more system names, --phase N or --all")
    for name in names:
        check_system_name(name)
    unknown = [n for n in names if n not in set(frame["name"])]
    if unknown:
        raise NotFoundError(f"no system named {', '.join(repr(n) for n in unknown)} in the inventory")
    return list(names)


class ConvertedSystem(BaseModel):
    system: str
    v2_path: str
    components: int
    bindings: int
    errors: int
    warnings: int
    state: str


@operator_only("convert systems")
@changes_state
def convert_systems(
    ws: Workspace, names: list[str], *, actor: str | None = None, progress: Progress = no_progress
) -> list[ConvertedSystem]:
    """Convert each system to v2 under ``generated_systems_v2/`` and move it to ``converted``.

    Refuses, before writing anything, any system that is deployed (convert
    only what is not running). Every v1 blueprint is read first: one that no
    longer loads (or names another system) changes nothing.

    Crash safety: the batch is one ``convert`` operation, so a kill is found by
    the next command (:func:`recover`, also run first here) and reported with
    what is left to convert. Each system is staged in full, then recorded (its
    history row, state change and the operation's progress in one
    transaction), then swapped in; recovery rolls a recorded system's swap
    forward and removes unrecorded staging, so the store and the files agree.
    """
    actor = actor or default_actor()
    for name in names:
        check_system_name(name)
    recover(ws)
    rows = _allowing(ws, names, Action.CONVERT, "cannot convert systems that are deployed")
    sources = {n: Path(rows[n]["source_path"]) for n in names}
    blueprints = {n: _load_named(load_v1_blueprint, sources[n] / "blueprint.yaml", n) for n in names}
    if not names:
        return []
    limits = load_policy(DEFAULT_POLICY).sandbox  # the fleet's code is probed confined (engine.sandbox)
    out = []
    start = {"systems": names, "done": 0}
    with operation(ws.db_path, names[0], "convert", actor=actor, detail=start) as op:
        for i, name in enumerate(names):
            progress(i, len(names), f"converting {name} (probing its code in a sandbox)")
            facts, notes = probe_code(blueprints[name], sources[name], limits)
            result = convert_blueprint(blueprints[name], sources[name], facts, notes)
            staging = stage_v2_system(result, ws.v2_dir)
            folder = safe_child(ws.v2_dir, name)
            step = {"systems": names, "done": i + 1, "swap": {"system": name, "staging": staging.name}}
            try:
                with connect(ws.db_path) as con, transaction(con):
                    conversions_store.record_conversions(con, [(result, str(folder))], actor)
                    row = systems_store.transition_within(
                        con,
                        name,
                        State.CONVERTED,
                        actor=actor,
                        reason="converted v1 -> v2",
                        detail={
                            "errors": result.report.count("error"),
                            "warnings": result.report.count("warning"),
                        },
                    )
                    op.record_progress(con, step, system=name)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)  # not recorded: the old files stand
                raise
            op.detail = step  # committed
            finish_swap(ws.v2_dir, name, staging.name)  # recorded: from here on it is rolled forward
            out.append(
                ConvertedSystem(
                    system=name,
                    v2_path=str(folder),
                    components=len(result.blueprint.components),
                    bindings=len(result.blueprint.bindings),
                    errors=result.report.count("error"),
                    warnings=result.report.count("warning"),
                    state=row["state"],
                )
            )
        op.end("completed", {"systems": names, "done": len(names)})
    progress(len(names), len(names), "done")
    return out


@operator_only("run the validation gate")
@changes_state
def validate_systems_v2(
    ws: Workspace, names: list[str], *, actor: str | None = None, progress: Progress = no_progress
) -> FleetValidation:
    """Run the PortBasedValidationGate on converted systems; each moves to validated or validation_failed.

    Every v2 blueprint (and the v1 blueprint it is compared with) is read
    first: one that does not load changes nothing. The gate runs v1 and v2 on
    the same requests in sandboxes, generated ones and those real clients
    sent in the system's earlier runs (policy ``[recorded_requests]``); its
    threshold and blocking checks are the policy's ``[gate]``.
    """
    actor = actor or default_actor()
    for name in names:
        check_system_name(name)
    rows = _allowing(ws, names, Action.VALIDATE, "convert these systems first")
    v2_files = {n: safe_child(ws.v2_dir, n) / "blueprint.yaml" for n in names}
    blueprints = {n: _load_named(load_v2_blueprint, v2_files[n], n) for n in names}
    sources = {n: Path(rows[n]["source_path"]) for n in names}
    originals = {n: _load_named(load_v1_blueprint, sources[n] / "blueprint.yaml", n) for n in names}
    policy = load_policy(DEFAULT_POLICY)
    gate = policy.gate
    results = []
    for i, name in enumerate(names):
        progress(i, len(names), f"validating {name} (v2 gate: running v1 and v2 side by side)")
        v1 = (originals[name], sources[name])
        replay = policy.recorded_requests.replay_per_endpoint
        recorded = (
            recorded_for(blueprints[name], ws.samples_dir, replay) if replay else recorded_store.ReplaySet()
        )
        result = validate_v2(
            blueprints[name],
            safe_child(ws.v2_dir, name),
            v1,
            limits=policy.sandbox,
            recorded=recorded.requests,
        )
        outcome = gate_outcome(result, gate)
        target = State.VALIDATED if outcome.success else State.VALIDATION_FAILED
        with connect(ws.db_path) as con, transaction(con):
            validations_store.record_validations(con, [result], actor)
            systems_store.transition_within(
                con,
                name,
                target,
                actor=actor,
                reason="validation gate passed" if outcome.success else "Validation failed",
                detail={
                    "validation_success_rate": round(result.validation_success_rate, 4),
                    "failed_checks": [c.name for c in result.failures()],
                    "blocked_by": outcome.blocked_by,
                    "rollback_needed": outcome.rollback_needed,
                    "recorded_requests": recorded.summary(),
                },
            )
        results.append(result)
    progress(len(names), len(names), "done")
    return FleetValidation(blueprint_version="v2", systems=results)


def _allowing(ws: Workspace, names: list[str], action: Action, refusal: str) -> dict[str, dict[str, Any]]:
    """The rows of ``names`` when each one's state allows ``action`` (engine.state.available_actions);
    else StateConflictError ``refusal: name (state), ...`` and nothing is done to any of them."""
    with connect(ws.db_path) as con:
        rows = {n: systems_store.get_system(con, n) for n in names}
    refused = [f"{n} ({r['state']})" for n, r in rows.items() if action not in available_actions(r["state"])]
    if refused:
        raise StateConflictError(f"{refusal}: {', '.join(refused)}")
    return rows


def _load_named(load: Callable[[Path], Any], path: Path, name: str) -> Any:
    """A blueprint that must describe system ``name`` (one edited to name another would be filed wrongly)."""
    blueprint = load(path)
    if blueprint.system.name != name:
        expected = f"'{name}', the system it is filed under"
        raise BlueprintError(path, "system.name", expected, repr(blueprint.system.name))
    return blueprint


class SystemBlueprints(BaseModel):
    system: str
    state: str
    v1_yaml: str
    v2_yaml: str | None
    report: ConversionReport | None
    v2_validation: SystemValidation | None


def show_system(ws: Workspace, name: str) -> SystemBlueprints:
    """Both blueprints of a system, its latest conversion report and v2 validation."""
    check_system_name(name)
    detail = system_detail(ws, name)
    with connect(ws.db_path) as con:
        latest = conversions_store.latest_report(con, name)
        v2_validation = validations_store.latest_validation(con, name, "v2")
    v2_yaml = blueprint_text(safe_child(ws.v2_dir, name) / "blueprint.yaml")
    return SystemBlueprints(
        system=name,
        state=detail.row["state"],
        v1_yaml=detail.blueprint_yaml,
        v2_yaml=v2_yaml,
        report=latest[0] if latest else None,
        v2_validation=v2_validation,
    )


def blueprint_diagrams(ws: Workspace, name: str) -> tuple[str, str | None]:
    """DOT text for the v1 and (if converted) v2 blueprint of a system."""
    check_system_name(name)
    detail = system_detail(ws, name)
    v1 = _load_named(load_v1_blueprint, Path(detail.row["source_path"]) / "blueprint.yaml", name)
    v2_file = safe_child(ws.v2_dir, name) / "blueprint.yaml"
    return v1_dot(v1), v2_dot(_load_named(load_v2_blueprint, v2_file, name)) if v2_file.exists() else None


def validation_comparison(ws: Workspace) -> pl.DataFrame:
    """Per system: latest v1 and v2 validation (passed, rate) with category, and what blocked v2 (if so)."""
    with connect(ws.db_path) as con:
        v1 = validations_store.latest_validations(con, "v1")
        v2 = validations_store.latest_validations(con, "v2")
    base = inventory(ws).select("name", "category", "phase", "state")
    for label, frame in (("v1", v1), ("v2", v2)):
        picked = (
            frame.select(
                pl.col("system").alias("name"),
                pl.col("passed").alias(f"{label}_passed"),
                pl.col("validation_success_rate").alias(f"{label}_rate"),
            )
            if frame.height
            else pl.DataFrame(
                schema={"name": pl.String, f"{label}_passed": pl.Boolean, f"{label}_rate": pl.Float64}
            )
        )
        base = base.join(picked, on="name", how="left")
    gate = policy().gate
    blocked = {}
    for name, checks in v2.select("system", "checks").iter_rows() if v2.height else []:
        found = SystemValidation(system=name, blueprint_version="v2", checks=json.loads(checks))
        outcome = gate_outcome(found, gate)
        if not outcome.success:
            blocked[name] = "; ".join(outcome.blocked_by)
    return base.with_columns(
        pl.col("name").replace_strict(blocked, default=None, return_dtype=pl.String).alias("v2_blocked_by")
    )


def validation_rates_by_category(ws: Workspace) -> pl.DataFrame:
    """Share of validated systems passing, per category and blueprint version (long form, for a chart)."""
    table = validation_comparison(ws)
    parts = []
    for version in ("v1", "v2"):
        done = table.filter(pl.col(f"{version}_passed").is_not_null())
        if done.height:
            parts.append(
                done.group_by("category")
                .agg(pl.col(f"{version}_passed").mean().alias("rate"), pl.len().alias("systems"))
                .with_columns(pl.lit(version).alias("version"))
            )
    if not parts:
        return pl.DataFrame(
            schema={"category": pl.String, "rate": pl.Float64, "systems": pl.UInt32, "version": pl.String}
        )
    return pl.concat(parts).sort("category", "version")


# --------------------------------------------------------------------------- judgement


def judge_samples_file(
    path: Path, *, validation_success_rate: float | None = None, policy_path: Path = DEFAULT_POLICY
) -> Verdict:
    """Judge a user's own samples file (Parquet or CSV) against the policy; stores nothing."""
    if validation_success_rate is not None and not 0 <= validation_success_rate <= 1:
        raise InputError(
            "--validation-rate", "value", "a number between 0 and 1", str(validation_success_rate)
        )
    policy = load_policy(policy_path)
    return judge_samples(read_samples_file(path), policy, validation_success_rate=validation_success_rate)


# --------------------------------------------------------------------------- Kubernetes (Argo Rollouts)


def argo_manifests(
    ws: Workspace,
    name: str,
    strategy: str = "canary",
    policy_path: Path | None = None,
    *,
    traffic: str = "replicas",
    image: str | None = None,
    prometheus_address: str | None = None,
    replicas: int = argo.DEFAULT_REPLICAS,
) -> str:
    """The Rollout, AnalysisTemplates and Services that run ``name``'s migration on a cluster under the
    policy, as multi-document YAML: the preview the page shows. :func:`export_argo` is the export.

    ``traffic`` is how a canary gets its share: ``replicas`` (one Service over
    both versions' pods), ``nginx`` or ``smi`` (Argo's traffic routing).
    """
    check_system_name(name)
    with connect(ws.db_path) as con:
        systems_store.get_system(con, name)  # NotFoundError for a name not in the inventory
    path = Path(policy_path) if policy_path else DEFAULT_POLICY
    return argo.manifests(
        name,
        load_policy(path),
        strategy,
        traffic=traffic,
        image=image,
        prometheus_address=prometheus_address,
        policy_name=path.name,
        replicas=replicas,
    )


def export_argo(
    ws: Workspace,
    name: str,
    strategy: str = "canary",
    policy_path: Path | None = None,
    *,
    actor: str | None = None,
    traffic: str = "replicas",
    image: str | None = None,
    prometheus_address: str | None = None,
    replicas: int = argo.DEFAULT_REPLICAS,
    file: str | None = None,
) -> str:
    """:func:`argo_manifests`, recorded in the audit log as ``export:argo`` (who took which manifests,
    under which policy, and where to): a cluster may run the migration from them, outside Switchyard.

    Viewers may export too: it changes no state, only the record says it happened.
    """
    text = argo_manifests(
        ws,
        name,
        strategy,
        policy_path,
        traffic=traffic,
        image=image,
        prometheus_address=prometheus_address,
        replicas=replicas,
    )
    path = Path(policy_path) if policy_path else DEFAULT_POLICY
    with connect(ws.db_path) as con, transaction(con):
        events_store.append_events(
            con,
            [
                {
                    "actor": actor or default_actor(),
                    "system": name,
                    "action": "export:argo",
                    "reason": f"Argo Rollouts manifests ({strategy}) exported",
                    "after": {
                        "strategy": strategy,
                        "traffic": traffic,
                        "replicas": replicas,
                        "policy": path.name,
                        "policy_sha256": argo.policy_digest(load_policy(path)),
                        "image": image,
                        "prometheus_address": prometheus_address,
                        "file": file,
                        "characters": len(text),
                    },
                }
            ],
        )
    return text


# --------------------------------------------------------------------------- roles


def roles(ws: Workspace) -> Roles:
    """Who is an operator and who a viewer in this workspace (``roles.toml``)."""
    return access.load_roles(ws)


def role_of(ws: Workspace, actor: str | None = None) -> Role:
    return access.role_of(ws, actor or default_actor())


@operator_only("change roles")
@changes_state
def set_role(ws: Workspace, name: str, role: Role | str, *, actor: str | None = None) -> Roles:
    """List ``name`` under ``role`` in the roles file (rewriting it) and record it in the audit log.

    Refuses to leave the workspace without an operator.
    """
    actor = actor or default_actor()
    try:
        role = Role(role)
    except ValueError:
        raise InputError("--role", "value", "operator or viewer", str(role)) from None
    if not name.strip() or not name.isprintable():
        raise InputError("--grant", "value", "a user name or e-mail address", repr(name))
    if role is Role.OPERATOR and access.is_anonymous(name):
        raise InputError("--grant", "value", "a name someone logs in with, not an anonymous visitor", name)
    current = access.load_roles(ws)
    updated = current.with_role(name, role)
    if not updated.operators and updated.default_role is not Role.OPERATOR:
        raise StateConflictError(f"{name} is the last operator; make someone else an operator first")
    with connect(ws.db_path) as con, transaction(con):
        events_store.append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": None,
                    "action": f"role:{role.value}",
                    "reason": f"{name.strip()} is now {role.value}",
                    "before": {"name": name.strip(), "role": current.role_of(name).value},
                    "after": {"name": name.strip(), "role": role.value},
                }
            ],
        )
        access.write_roles(ws, updated)  # inside the transaction: if writing fails, no event either
    return updated


# --------------------------------------------------------------------------- audit


FLEET_LOAD_ACTIONS = events_store.FLEET_LOAD_ACTIONS


def list_events(ws: Workspace, **filters: Any) -> pl.DataFrame:
    """Audit events newest first; filters: system, actor, action, action_prefix, since, until, limit,
    exclude_actions (FLEET_LOAD_ACTIONS: the one-event-per-system records of a fleet load)."""
    with connect(ws.db_path) as con:
        return events_store.list_events(con, **filters)


def event_facets(ws: Workspace) -> dict[str, list[str]]:
    """The systems, actors and actions that occur in the audit log (for filter choices)."""
    with connect(ws.db_path) as con:
        return events_store.event_facets(con)


def events_csv(ws: Workspace, **filters: Any) -> bytes:
    """The filtered audit log as CSV (UTF-8, header row; before/after as JSON text)."""
    frame = list_events(ws, **filters)
    return frame.with_columns(pl.col("ts").dt.to_string("%Y-%m-%dT%H:%M:%S%.6f%z")).write_csv().encode()


# --------------------------------------------------------------------------- KPIs, standup, timeline


def data_version(ws: Workspace) -> tuple[Any, ...]:
    """A token that changes whenever the store, the plan or the policy changes in a way a page can show.

    Pages cache what they draw under it, with :func:`samples_version` for views
    of the samples (pages/_shared.py). Read it *before* what it versions: a
    write in between then only makes a cached view newer than its token, never
    older. One short connection (the workspace is already migrated by then).
    """
    with connect(ws.db_path, migrate=False) as con:
        store = store_version(con)
    files = [
        (f.stat().st_mtime_ns, f.stat().st_size) if f.exists() else None
        for f in (plan_path(ws), DEFAULT_POLICY)
    ]
    return store, *files


def files_read(ws: Workspace, service: str) -> tuple[Path, ...]:
    """The files ``service`` reads beside the store and the samples, for a page to key its cached view
    on (pages/_shared.py ``cached``; :func:`engine.store.version.files_version`). Empty for the rest."""
    catalog = (risks_path(ws), DEFAULT_RISKS)  # the workspace's own register, else the bundled one
    if service == "risks":
        return (*catalog, ws.backups_dir, ws.failures_dir)
    if service == "playbooks":
        return catalog
    if service == "optimisations":  # each system's effective recipe config
        return tuple(sorted(ws.v2_dir.glob("*/blueprint.yaml")))
    if service == "post_mortem":
        return (ws.failures_dir,)
    return ()


def files_version(ws: Workspace, service: str) -> tuple[Any, ...]:
    """:func:`files_read` as a token (modification times and sizes, no file opened)."""
    return store_files_version(files_read(ws, service))


@contextlib.contextmanager
def one_connection(ws: Workspace) -> Iterator[None]:
    """Every service called by this thread inside the block reads the store through one connection.

    app.py draws each page inside one (engine.store.db.one_connection): a page
    reading through a dozen services opened the DuckDB file a dozen times.
    """
    with _one_connection(ws.db_path):
        yield


def overview(ws: Workspace, as_of: dt.datetime | None = None) -> Overview:
    """KPIs now and a day earlier, the plan and timeline, changes, blockers and what is due next."""
    with connect(ws.db_path) as con:
        return build_overview(con, ws, as_of)


def kpis(ws: Workspace, as_of: dt.datetime | None = None) -> MigrationMetrics:
    """The seed's MigrationMetrics measured from the store as of a moment (default now)."""
    with connect(ws.db_path) as con:
        return metrics_as_of(con, ws, as_of)


@operator_only("move the plan's start date")
@changes_state
def set_plan_start(ws: Workspace, start: dt.date, *, actor: str, reason: str = "plan start date set") -> Plan:
    """Move the plan's start date (writes the workspace's plan.toml) and record who did it."""
    with connect(ws.db_path) as con:
        before = workspace_plan(con, ws).start_date
        plan = write_start_date(ws, start)
        events_store.append_events(
            con,
            [
                {
                    "actor": actor,
                    "system": None,
                    "action": "plan:start_date",
                    "reason": reason,
                    "before": {"start_date": before.isoformat()},
                    "after": {"start_date": start.isoformat()},
                }
            ],
        )
    return plan


# --------------------------------------------------------------------------- hold, approvals, re-judge


@operator_only("put a system on hold")
@changes_state
def hold(ws: Workspace, name: str, *, actor: str, reason: str, owner: str | None = None) -> Hold:
    """Freeze ``name`` where it is (traffic stays, no promote/rollback/deploy/run) until released."""
    with connect(ws.db_path) as con, transaction(con):
        state = systems_store.get_system(con, name)["state"]
        return place_hold(con, name, state, actor=actor, reason=reason, owner=owner)


@operator_only("release a hold")
@changes_state
def release(ws: Workspace, name: str, *, actor: str, reason: str) -> Hold:
    """End the hold on ``name``; it resumes from the state it was held in."""
    with connect(ws.db_path) as con, transaction(con):
        systems_store.get_system(con, name)
        return release_hold(con, name, actor=actor, reason=reason)


def recorded_requests(ws: Workspace, name: str) -> pl.DataFrame:
    """The request bodies the gateway kept of ``name``'s runs for the gate to replay, per run and endpoint.

    What is kept is what clients sent (policy ``[recorded_requests]``): this is
    where a lead sees how much, before deciding to keep it or forget it.
    """
    check_system_name(name)
    with connect(ws.db_path) as con:
        systems_store.get_system(con, name)
    schema = {
        "run_id": pl.String,
        "endpoint": pl.String,
        "kept": pl.Int64,
        "kept_bytes": pl.Int64,
        "requests": pl.Int64,
        "too_large": pl.Int64,
        "first_kept": pl.Datetime("us", "UTC"),
        "damaged": pl.Boolean,
    }
    return pl.DataFrame(recorded_store.overview(ws.samples_dir, name), schema=schema)


@operator_only("delete recorded requests")
@changes_state
def forget_recorded_requests(ws: Workspace, name: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Delete the request bodies kept of ``name``'s runs (not of a run still recording); audited.

    Copies already in a ``backup-store`` archive stay there. Returns the runs
    whose requests were deleted, how many bodies, and the runs left recording.
    """
    check_system_name(name)
    if not reason.strip():
        raise InputError("--reason", "value", "why the recorded requests are deleted", repr(reason))
    with connect(ws.db_path) as con, transaction(con):
        systems_store.get_system(con, name)
        routes = deployments_store.all_routes(con)
        recording = {r for r in routes["record_run"].to_list() if r} if routes.height else set()
        runs, bodies = recorded_store.forget(ws.samples_dir, name, recording=recording)
        left = sorted(set(recorded_store.run_files(ws.samples_dir, name)))
        outcome = {"runs": runs, "bodies": bodies, "left_recording": left}
        events_store.append_events(
            con,
            [
                {"actor": actor, "system": name, "action": "recorded_requests:forgotten", "reason": reason}
                | {"before": None, "after": outcome}
            ],
        )
    return outcome


def policy() -> Policy:
    """The decision policy in force (data/policy.toml): thresholds, triggers, governance."""
    return load_policy(DEFAULT_POLICY)


def calibration(ws: Workspace, name: str) -> Calibration | None:
    """The newest A/A calibration of ``name`` (what the measurement reads between two copies of old)."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        return latest_calibration(con, name)


def capacity(ws: Workspace, name: str) -> Capacity | None:
    """The newest capacity probe of ``name``: each version's sustainable req/s, side by side."""
    check_system_name(name)
    with connect(ws.db_path) as con:
        return latest_capacity(con, name)


def next_step(ws: Workspace, name: str, actor: str | None = None) -> NextStep:
    """What to do next with ``name`` as ``actor`` sees it: one sentence and the actions that can act now
    (engine.next_step): the verdict's consequence, a hold, the four-eyes rule, the warm window."""
    check_system_name(name)
    actor = actor or default_actor()
    with connect(ws.db_path) as con:
        row = systems_store.get_system(con, name)
        run = deployments_store.latest_run(con, name, "parallel")
        verdict = deployments_store.latest_verdict(con, name)
        held = current_holds(con, name)
        available = available_now(con, name, row)
        approvers = approvals_of(con, name, int(verdict["id"])) if verdict else pl.DataFrame()
        last = first_row(
            con,
            "SELECT reason FROM events WHERE system = ? AND action = ? ORDER BY ts DESC, id DESC LIMIT 1",
            [name, f"state:{row['state']}"],
        )
    if verdict is not None and (run is None or verdict["run_id"] != run["id"]):
        verdict = None  # a verdict on an earlier run does not decide the newest one
    if run is not None:
        with connect(ws.db_path) as con:
            chain = run_chain(con, run)
        run = run | {"chain_seconds": chain_seconds(chain)}
    hold = held.row(0, named=True) if held.height else None
    others = approvers.filter(pl.col("actor") != actor).height if approvers.height else 0
    return step_for(
        row["state"],
        verdict=verdict,
        run=run,
        held_by=hold["owner"] if hold else None,
        hold_reason=hold["reason"] if hold else "",
        approval_missing=policy().governance.approval_required and not others,
        warm_seconds=seconds_left(ws, name),
        last_reason=(last[0] or "") if last else "",
        run_in_progress=run is not None and run["status"] == "running",
        available=available,
    )


def warm_seconds_left(ws: Workspace, name: str) -> float | None:
    """Seconds left in the fast-rollback window of ``name`` (old version still running), or None."""
    return seconds_left(ws, name)


def holds(ws: Workspace) -> pl.DataFrame:
    """Systems on hold now: system, since, placed_by, owner, reason, state (every page shows them)."""
    with connect(ws.db_path) as con:
        return current_holds(con)


@operator_only("approve a promotion")
@changes_state
def approve(ws: Workspace, name: str, *, actor: str, reason: str) -> pl.DataFrame:
    """Approve promoting ``name`` on its newest GO verdict; returns that verdict's approvals."""
    with connect(ws.db_path) as con, transaction(con):
        systems_store.get_system(con, name)
        verdict = deployments_store.latest_verdict(con, name)
        grant(con, name, verdict, actor=actor, reason=reason)
        return approvals_of(con, name, int(verdict["id"]) if verdict else None)


def approvals(ws: Workspace, name: str) -> pl.DataFrame:
    """Approvals of the newest verdict of ``name`` (empty when none or no verdict)."""
    with connect(ws.db_path) as con:
        verdict = deployments_store.latest_verdict(con, name)
        return approvals_of(con, name, int(verdict["id"]) if verdict else -1)


@operator_only("judge a run again (it records the re-judgement)")
@changes_state
def rejudge(
    ws: Workspace,
    name: str,
    *,
    actor: str,
    run_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    policy_path: Path | None = None,
    reason: str = "",
) -> Rejudgement:
    """The run's samples judged again under another policy; kept beside, never instead of, the original."""
    base = load_policy(policy_path) if policy_path else load_policy(DEFAULT_POLICY)
    policy = apply_overrides(base, overrides or {})
    with connect(ws.db_path) as con:
        systems_store.get_system(con, name)
        result = rejudge_run(ws, con, name, run_id, policy)
        with transaction(con):
            record_rejudgement(con, result, actor=actor, reason=reason)
    return result


def rejudgements(ws: Workspace, name: str) -> pl.DataFrame:
    """Earlier re-judgements of ``name`` from the audit log, newest first."""
    return list_events(ws, system=name, action=REJUDGED)


def rejudgement_history(ws: Workspace, name: str, run_id: str | None = None) -> pl.DataFrame:
    """The recorded re-judgements of ``name`` (of ``run_id`` only, when given), each beside its
    original verdict with the policy edits and what they changed; newest first."""
    return rejudge_history(rejudgements(ws, name), run_id)


# --------------------------------------------------------------------------- risks, playbooks, optimisations


def risks(ws: Workspace, as_of: dt.datetime | None = None) -> list[RiskView]:
    """The seed's risk matrix with live evidence: which risks materialised as of a moment, and where."""
    with connect(ws.db_path) as con:
        return risk_register(con, ws, as_of)


def playbooks(ws: Workspace) -> list[ChecklistView]:
    """The contingency playbooks and the cleanup checklist, each step with its current tick."""
    catalog = load_catalog(ws)
    with connect(ws.db_path) as con:
        return checklist_views(con, catalog)


@operator_only("tick playbooks")
@changes_state
def tick_playbook(
    ws: Workspace, playbook_id: str, step_id: str, done: bool, *, actor: str | None = None, reason: str = ""
) -> StepView:
    """Tick (or untick, with a reason) one step of a playbook or the cleanup list; recorded as an event."""
    actor = actor or default_actor()
    catalog = load_catalog(ws)
    with connect(ws.db_path) as con, transaction(con):
        step, _ = record_tick(con, catalog, playbook_id, step_id, done, actor=actor, reason=reason)
    return step


def optimisations(ws: Workspace) -> list[Opportunity]:
    """The seed's optimisation areas with the figures measured on the systems that ran or rolled back."""
    with connect(ws.db_path) as con:
        return find_opportunities(con, ws)


# --------------------------------------------------------------------------- notifications


def notifications(
    ws: Workspace, *, statuses: list[str] | None = None, limit: int = 100
) -> notify.NotifyStatus:
    """The webhooks of ``notify.toml`` (URLs without path) and the outbox: counts, newest deliveries."""
    return notify.notify_status(ws, statuses=statuses, limit=limit)


@operator_only("send pending notifications")
@changes_state
def flush_notifications(
    ws: Workspace, *, actor: str | None = None, retry_failed: bool = False
) -> notify.FlushResult:
    """Send every pending notification now; ``retry_failed`` gives failed ones another round first."""
    return notify.flush(ws, actor=actor or default_actor(), retry_failed=retry_failed)


@operator_only("send a test notification")
@changes_state
def send_test_notification(ws: Workspace, target: str, *, actor: str | None = None) -> notify.ProbeResult:
    """One signed test request to a webhook of ``notify.toml`` (name or URL), or unsigned to a URL."""
    return notify.probe(ws, target, actor=actor or default_actor())


def standup_digest(ws: Workspace, as_of: dt.datetime | None = None) -> Digest:
    """The standup as Markdown, saying what the Standup page shows, as of a moment (default now)."""
    return digest_of(overview(ws, as_of))


@operator_only("send the standup digest")
@changes_state
def send_digest(
    ws: Workspace, as_of: dt.datetime | None = None, *, actor: str | None = None
) -> notify.DigestSent:
    """Record the standup digest in the audit log and post it to the webhooks subscribed to ``digest``."""
    return notify.send_digest(ws, standup_digest(ws, as_of), actor=actor or default_actor())


# --------------------------------------------------------------------------- post-mortem


class ReportFile(BaseModel):
    """A rendered post-mortem: what to call the file, its MIME type and its bytes."""

    file_name: str
    mime: str
    data: bytes


def post_mortem(
    ws: Workspace, scope: str | Scope, *, generated_by: str | None = None, as_of: dt.datetime | None = None
) -> PostMortem:
    """Everything the post-mortem for ``scope`` (migration, phase:N, system:NAME) says, from the store."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    with connect(ws.db_path) as con:
        return collect_post_mortem(con, ws, parsed, generated_by=generated_by or default_actor(), as_of=as_of)


def post_mortem_file(
    ws: Workspace,
    scope: str | Scope,
    fmt: str,
    *,
    generated_by: str | None = None,
    as_of: dt.datetime | None = None,
) -> ReportFile:
    """The post-mortem rendered as Markdown, HTML or PDF (reading only: viewers may export too)."""
    if fmt not in REPORT_FORMATS:
        raise InputError("--format", "value", " | ".join(REPORT_FORMATS), fmt)
    post = post_mortem(ws, scope, generated_by=generated_by, as_of=as_of)
    return ReportFile(
        file_name=report_file_name(post.scope, fmt, post.as_of),
        mime=REPORT_FORMATS[fmt][0],
        data=render_report(post, fmt),
    )


# --------------------------------------------------------------------------- backup / restore


@operator_only("back up the store")
@changes_state
def backup_store(ws: Workspace, target_dir: Path, *, actor: str) -> store_backup.BackupResult:
    """A consistent snapshot of store, samples, documents and backups in a new folder in ``target_dir``."""
    return store_backup.backup(ws, Path(target_dir), actor=actor)


@operator_only("restore the store from a backup")
@changes_state
def restore_store(ws: Workspace, source_dir: Path, *, actor: str, reason: str) -> dict[str, Any]:
    """Replace the workspace's data with a verified backup (refused if damaged, or while processes run)."""
    if not reason.strip():
        raise InputError("--reason", "''", "why you restore (recorded with your name)")
    from engine.deploy.supervisor import owned_pids

    return store_backup.restore(ws, Path(source_dir), actor=actor, reason=reason, live_pids=owned_pids(ws))


def fleet_summary(ws: Workspace) -> dict[str, Any]:
    """Counts for the sidebar: total, by state, by category."""
    frame = inventory(ws)
    return {
        "total": frame.height,
        "by_state": dict(frame.group_by("state").len().sort("state").iter_rows()),
        "by_category": dict(frame.group_by("category").len().sort("category").iter_rows()),
    }
