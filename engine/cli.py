"""Command line: ``python -m engine [--workspace DIR] COMMAND [--json]``.

Every command calls one function in :mod:`engine.services`, the same ones the
pages call. Bad input exits with status 2 and one line on stderr (and
``{"error": ...}`` on stdout with ``--json``); a bug exits 1 with a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine import services, units
from engine.errors import InputError, SwitchyardError
from engine.judge import present
from engine.labels import TERMINAL_V1_LABELS, v1_result
from engine.notify.outbox import dispatch_quietly
from engine.validate.gate import gate_outcome
from engine.workspace import Workspace

WORKSPACE_FREE = {"init"}
"""Commands that work without an initialised workspace (and ``judge --samples FILE``)."""

Handler = Callable[[argparse.Namespace, Workspace], tuple[Any, str]]
"""A command returns (JSON-able result, human text)."""


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, pl.DataFrame):
        return [_to_jsonable(r) for r in value.iter_rows(named=True)]
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return _to_jsonable(value.model_dump(mode="json"))
    return value


def printable(text: str, *, one_line: bool = False) -> str:
    """``text`` safe for a terminal: control characters, escape sequences and undecodable bytes of a
    file name (surrogates) are shown escaped, never sent raw; ``one_line`` escapes line breaks too."""
    return "".join(c if c.isprintable() or (c == "\n" and not one_line) else repr(c)[1:-1] for c in text)


def text_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain fixed-width table for terminals."""
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


# --------------------------------------------------------------------------- commands


def cmd_init(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    result = services.init_workspace(ws, Path(args.fleet) if args.fleet else None, actor=args.actor)
    rep = result.imported
    text = (
        f"workspace {result.workspace} ({'created' if result.created else 'existing'})\n"
        f"imported {len(rep.loaded)} new, {len(rep.updated)} refreshed, {len(rep.rejected)} rejected "
        f"from {rep.fleet_dir}\n"
        f"v1 validation success rate: {result.v1_validation_success_rate:.1%}"
    )
    text += _rejected_and_ignored(rep)
    return result, text


def _rejected_and_ignored(report: Any) -> str:
    """One line per rejected folder, and one naming what was ignored as not a system."""
    text = "".join(f"\n  rejected {r.folder}: {r.error}" for r in report.rejected)
    if report.ignored:
        names = ", ".join(report.ignored[:8])
        more = f" and {len(report.ignored) - 8} more" if len(report.ignored) > 8 else ""
        text += f"\n  ignored (not systems): {names}{more}"
    return text


def cmd_import_fleet(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    report = services.import_fleet(ws, Path(args.fleet_dir), actor=args.actor)
    services.validate_v1(ws, report.loaded + report.updated, actor=args.actor)
    text = (
        f"imported {len(report.loaded)} new, {len(report.updated)} refreshed, "
        f"{len(report.rejected)} rejected from {report.fleet_dir}"
    )
    text += _rejected_and_ignored(report)
    return report, text


def cmd_inventory(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    frame = services.inventory(ws)
    if args.category:
        frame = frame.filter(pl.col("category") == args.category)
    if args.state:
        frame = frame.filter(pl.col("state") == args.state)
    counts = {
        "by_category": dict(frame.group_by("category").len().sort("category").iter_rows()),
        "by_state": dict(frame.group_by("state").len().sort("state").iter_rows()),
        "by_phase": {str(k): v for k, v in frame.group_by("phase").len().sort("phase").iter_rows()},
    }
    result = {"total": frame.height, "counts": counts, "systems": frame.drop("source_path")}
    rows = frame.with_columns(v1_result(labels=TERMINAL_V1_LABELS).alias("v1")).to_dicts()
    text = text_table(rows, ["migration_order", "name", "category", "priority", "phase", "state", "v1"])
    text += f"\n{frame.height} systems; " + ", ".join(f"{k}: {v}" for k, v in counts["by_category"].items())
    return result, text


def _fleet_result(fleet: Any) -> dict[str, Any]:
    return {
        "validation_success_rate": fleet.validation_success_rate,
        "systems_passed": fleet.systems_passed,
        "systems_total": len(fleet.systems),
        "check_success_rate": fleet.check_success_rate,
        "systems": [
            {
                "system": s.system,
                "passed": s.passed,
                "validation_success_rate": s.validation_success_rate,
                "checks_passed": s.checks_passed,
                "checks_total": s.checks_total,
                "failed_checks": [c.model_dump() for c in s.failures()],
                "requests_sent": s.requests_sent(),  # equivalence: generated / recorded (real traffic)
            }
            for s in fleet.systems
        ],
    }


def _check_lines(check: Any, indent: str = "      ") -> list[str]:
    """A failed check, and under it each request v1 and v2 answered differently, the answers side by side."""
    where = check.target or check.component or "system"
    lines = [f"{indent}{check.name} [{where}]: {printable(check.message, one_line=True)}"]
    for diff in check.evidence or []:
        request = json.dumps(diff.get("request"), ensure_ascii=False, sort_keys=True)
        shown = printable(request, one_line=True)
        recorded = diff.get("source") == "recorded"
        kind, origin = ("recorded ", f" (run {diff.get('run_id')})") if recorded else ("", "")
        lines.append(
            f"{indent}  {kind}request #{diff.get('position')} {diff.get('endpoint')} {shown}{origin}"
        )
        for side in ("v1", "v2"):
            answer = diff.get(side) or {}
            body = json.dumps(answer.get("body"), ensure_ascii=False, sort_keys=True)
            lines.append(f"{indent}    {side}: {answer.get('status')} {printable(body, one_line=True)}")
    return lines


def _fleet_text(fleet: Any, label: str) -> str:
    lines = []
    for s in fleet.systems:
        verdict = "PASS" if s.passed else "FAIL"
        lines.append(f"{verdict}  {s.system}  {s.checks_passed}/{s.checks_total} checks")
        if s.sent_text():
            lines.append(f"      {s.sent_text()}")
        for c in s.failures():
            lines += _check_lines(c)
    lines.append(
        f"fleet {label} validation success rate: {fleet.validation_success_rate:.1%} "
        f"({fleet.systems_passed}/{len(fleet.systems)} systems; {fleet.check_success_rate:.1%} of checks)"
    )
    return "\n".join(lines)


def cmd_validate_v1(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if not args.all and not args.names:
        raise InputError("validate-v1", "arguments", "one or more system names, or --all")
    fleet = services.validate_v1(ws, None if args.all else args.names, actor=args.actor)
    return _fleet_result(fleet), _fleet_text(fleet, "v1")


def _selection(args: argparse.Namespace, ws: Workspace) -> list[str]:
    return services.select_systems(ws, args.names, phase=args.phase, all_systems=args.all)


def cmd_convert(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    converted = services.convert_systems(ws, _selection(args, ws), actor=args.actor)
    lines = [
        f"{c.system}: {c.components} components, {c.bindings} bindings, {c.errors} errors, "
        f"{c.warnings} warnings -> {c.v2_path}"
        for c in converted
    ]
    return {"converted": converted}, "\n".join(lines + [f"converted {len(converted)} systems"])


def cmd_validate(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    fleet = services.validate_systems_v2(ws, _selection(args, ws), actor=args.actor)
    result = _fleet_result(fleet)
    gate = services.policy().gate
    outcomes = {s.system: gate_outcome(s, gate) for s in fleet.systems}
    result["systems_through_gate"] = sum(o.success for o in outcomes.values())
    for row in result["systems"]:
        row["gate"] = outcomes[row["system"]].model_dump()
    text = _fleet_text(fleet, "v2")
    blocked = [f"  {n}: {'; '.join(o.blocked_by)}" for n, o in outcomes.items() if not o.success]
    text += f"\nthrough the gate: {result['systems_through_gate']}/{len(fleet.systems)} systems"
    return result, "\n".join([text, *(["blocked at the gate:", *blocked] if blocked else [])])


def cmd_show(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    shown = services.show_system(ws, args.name)
    text = [
        f"# {shown.system} ({shown.state})",
        "## v1 blueprint",
        shown.v1_yaml,
        "## v2 blueprint",
        shown.v2_yaml or "(not converted yet)",
    ]
    if shown.report:
        text += ["## conversion report"] + [
            f"  [{d.severity}] {d.component or '-'}: {d.message}" for d in shown.report.decisions
        ]
    if shown.v2_validation:
        v2 = shown.v2_validation
        text.append(f"## v2 gate: {v2.checks_passed}/{v2.checks_total} checks passed")
        text += [f"  {v2.sent_text()}"] if v2.sent_text() else []
        for check in v2.failures():
            text += _check_lines(check, "  ")
    return shown, "\n".join(text)


def cmd_judge(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if bool(args.samples) == bool(args.name):
        raise InputError("judge", "arguments", "a system NAME, or --samples FILE (not both)")
    if args.name and (args.source or args.window):
        verdict = services.judge_from_source(
            ws,
            args.name,
            actor=_actor(args),
            source=args.source or "samples",
            window_s=args.window,
            policy_path=Path(args.policy) if args.policy else services.DEFAULT_POLICY,
        )
    elif args.name:
        verdict = services.judge_system(ws, args.name, actor=_actor(args))
    else:
        verdict = services.judge_samples_file(
            Path(args.samples),
            validation_success_rate=args.validation_rate,
            policy_path=Path(args.policy) if args.policy else services.DEFAULT_POLICY,
        )
    text = _verdict_text(verdict)
    if args.name:  # what the same measurement reads between two copies of old, beside the verdict
        found = services.calibration(ws, args.name)
        text += (
            f"\nmeasurement: {found.describe()}"
            if found
            else f"\nmeasurement: not calibrated (calibrate {args.name} runs old against a copy of old)"
        )
    return verdict, text


def _verdict_text(verdict: Any) -> str:
    """A verdict for the terminal: criteria and triggers with units, the reasons, the seed's rule."""
    lines = [
        f"verdict: {verdict.verdict}",
        f"  ({present.seed_rule(verdict.new_better).capitalize()}: validation, mean "
        "throughput and latency against the seed's thresholds, without intervals)",
    ]
    for c in verdict.criteria:  # ok proven, ~ a guard within by its estimate, ?? holds up GO, XX fails
        mark = (
            "ok "
            if c.passed and c.conclusive
            else ("XX " if c.conclusive else ("?? " if c.holds_up_go else "~  "))
        )
        guard = " [guard]" if c.role == "guard" else ""
        lines.append(f"  {mark}{c.name}{guard}: {c.explanation}")
    lines += [
        f"  trigger {t.name}: {'FIRED' if t.fired else 'quiet'} ({t.explanation})" for t in verdict.triggers
    ]
    lines += ["reasons:"] + [f"  - {r}" for r in verdict.reasons]
    if verdict.to_decide:
        lines += ["to decide, keep running:"]
        lines += [f"  - {m.criterion}: {m.explanation}" for m in verdict.to_decide]
    return "\n".join(lines)


def cmd_export_argo(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    text = services.export_argo(
        ws,
        args.name,
        args.strategy,
        Path(args.policy) if args.policy else None,
        actor=_actor(args),
        traffic=args.traffic,
        image=args.image,
        prometheus_address=args.prometheus,
        replicas=args.replicas,
        file=args.out,
    )
    result: dict[str, Any] = {"system": args.name, "strategy": args.strategy, "traffic": args.traffic}
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError("--out", "path", "a writable file", args.out) from exc
        return result | {"file": args.out}, f"wrote {args.out} ({len(text):,} characters)"
    return result | {"yaml": text}, text


def _actor(args: argparse.Namespace) -> str:
    return args.actor or services.default_actor()


def _progress(args: argparse.Namespace) -> Callable[[int, int, str], None]:
    """Progress lines on stderr, so ``--json`` output on stdout stays clean."""

    def report(done: int, total: int, label: str) -> None:
        print(f"[{done}/{total}] {label}", file=sys.stderr, flush=True)

    return report


def cmd_checklist(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    result = services.checklist(ws, args.name, actor=_actor(args), ack=args.ack, note=args.note)
    lines = [f"{'ok ' if i.ok else 'XX '} {i.name}: {i.detail}" for i in result.items]
    lines.append(f"ready_to_migrate: {result.ready_to_migrate}")
    return result.as_flags() | {"items": result.items}, "\n".join(lines)


def cmd_deploy(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    out = services.deploy(
        ws,
        args.name,
        args.strategy,
        actor=_actor(args),
        reason=args.reason,
        monitor_s=args.monitor,
        warm_s=args.warm,
        progress=_progress(args),
    )
    text = (
        f"{out.system}: {out.state} ({out.strategy}); blue on port {out.blue_port}, green on port "
        f"{out.green_port}; gateway http://127.0.0.1:{out.gateway_port}/s/{out.system}/call/<endpoint>"
    )
    return out, text


def cmd_parallel_run(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.stop:
        run_id = services.stop_run(ws, args.name, actor=_actor(args))
        return {"stop_requested": run_id}, f"asked {run_id} to stop"
    if args.extend:
        if args.duration is None:
            raise InputError("--extend", "arguments", "--duration SECONDS: how much longer to run")
        if args.bucket is not None:
            raise InputError("--extend", "--bucket", "no --bucket: it keeps the bucket of the run it adds to")
        out = services.extend_run(
            ws,
            args.name,
            actor=_actor(args),
            duration_s=args.duration,
            rps=args.rps,
            progress=_progress(args),
        )
    else:
        out = services.parallel_run(
            ws,
            args.name,
            actor=_actor(args),
            duration_s=args.duration,
            bucket_s=args.bucket,
            rps=args.rps or 50.0,
            progress=_progress(args),
        )
    s = out.summary
    text = (
        f"{out.system}: run {out.run_id} {out.status}"
        + (f" (continues {out.continues})" if out.continues else "")
        + f"; sent {units.count(s['sent'])}, lost {units.count(s['lost'])}, "
        f"{units.count(s['samples'])} samples; state {out.state}"
    )
    if out.rollback:
        text += f"\nrolled back automatically: {out.rollback.reason}"
        text += f"\nfailure document: {out.rollback.failure_document}"
    if out.verdict is not None:
        text += "\n" + _verdict_text(out.verdict)
    if out.not_judged:
        text += f"\nno verdict: {out.not_judged}"
    return out, text


def _newest(found: Any, missing: str) -> tuple[Any, str]:
    """A recorded measurement (``--show``) in words, or what to run to get one."""
    return found, found.describe() if found is not None else missing


def cmd_calibrate(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.show:
        missing = f"{args.name}: not calibrated yet (run calibrate {args.name})"
        return _newest(services.calibration(ws, args.name), missing)
    out = services.calibrate(
        ws, args.name, actor=_actor(args), duration_s=args.duration, rps=args.rps, progress=_progress(args)
    )
    s = out.summary
    lines = [f"{out.system}: A/A run {out.run_id} {out.status}; sent {s['sent']}, lost {s['lost']}"]
    if out.calibration is not None:
        lines.append(out.calibration.describe())
    if out.verdict is not None:
        lines += [f"  - {r}" for r in out.verdict.reasons]
    return out, "\n".join(lines)


def cmd_capacity(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.show:
        missing = f"{args.name}: no capacity probe yet (run capacity {args.name})"
        return _newest(services.capacity(ws, args.name), missing)
    out = services.measure_capacity(
        ws,
        args.name,
        actor=_actor(args),
        rounds=args.rounds,
        round_s=args.seconds,
        connections=args.connections,
        progress=_progress(args),
    )
    return out, f"{out.system}: {out.describe()}"


def cmd_promote(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    out = services.promote(
        ws,
        args.name,
        actor=_actor(args),
        reason=args.reason,
        expected_version=args.expected_version,
        monitor_s=args.monitor,
        rps=args.rps,
        warm_s=args.warm,
        progress=_progress(args),
    )
    text = f"{out.system}: {out.state}" + ("" if out.promoted else " (not promoted)")
    if out.rollback:
        text += f"\nrolled back automatically: {out.rollback.reason}"
    return out, text


def cmd_rollback(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    out = services.rollback(
        ws,
        args.name,
        actor=_actor(args),
        reason=args.reason,
        expected_version=args.expected_version,
        progress=_progress(args),
    )
    text = f"{out.system}: {out.state}; failure document {out.failure_document}"
    if out.problems:
        text += "\nEMERGENCY, the old version does not answer correctly:\n  " + "\n  ".join(out.problems)
    return out, text


def cmd_status(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    out = services.status(ws, args.name)
    lines = [f"{out.system}: {out.state} (version {out.version})"]
    if out.route:
        lines.append(
            f"  route: active {out.route['active_slot']}, canary {out.route['canary_weight']:.0%}, "
            f"mirror {'on' if out.route['mirror'] else 'off'} ({out.route['strategy']})"
        )
    lines += [
        f"  {p['role']:7s} {p['runtime']:7s} pid {p['pid']} port {p['port']} "
        f"{'healthy' if p['healthy'] else 'NOT ANSWERING'} ({p['health_failures']} failed checks)"
        for p in out.processes
    ]
    if out.latest_run:
        r = out.latest_run
        lines.append(f"  latest run {r['id']}: {r['status']}, {r['samples']} samples")
    if out.verdict:
        lines.append(f"  verdict {out.verdict['verdict']} on {out.verdict['run_id']}")
    if out.interrupted:
        i = out.interrupted
        lines.append(f"  INTERRUPTED {i['operation']} ({i['at']}): {i['next']}")
    step = services.next_step(ws, args.name, _actor(args))
    lines.append(f"  next: {step.sentence}")
    lines += [
        f"    {'* ' if a.primary else '  '}{a.label}" + ("" if a.enabled else f" (not now: {a.why_not})")
        for a in step.actions
    ]
    lines.append(f"  can now: {', '.join(out.available_actions) or 'nothing'}")
    return out.model_dump(mode="json") | {"next_step": step.model_dump(mode="json")}, "\n".join(lines)


def cmd_backup_store(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    out = services.backup_store(ws, Path(args.to), actor=_actor(args))
    tables = ", ".join(f"{k} {v}" for k, v in out.tables.items() if v)
    return out, f"backup written to {out.path}: {out.files} files, {out.bytes} bytes; rows: {tables}"


def cmd_restore_store(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    manifest = services.restore_store(ws, Path(args.source), actor=_actor(args), reason=args.reason)
    return manifest, f"restored {ws.root} from {args.source} (backup of {manifest['created_at']})"


def cmd_down(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    stopped = services.down(ws, actor=_actor(args))
    return {"stopped": stopped}, "\n".join(
        ["stopped:"] + [f"  {s}" for s in stopped]
    ) if stopped else "nothing running"


def _when(label: str, value: str | None) -> dt.datetime | None:
    """A --since/--until/--as-of value: a date (midnight UTC) or an ISO timestamp."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(label, "value", "a date YYYY-MM-DD or an ISO timestamp", value) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def cmd_roles(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.grant is not None:
        roles = services.set_role(ws, args.grant, args.role or "operator", actor=_actor(args))
    elif args.role is not None:
        raise InputError("roles", "--role", "--grant NAME with it (roles --grant NAME --role operator)")
    else:
        roles = services.roles(ws)
    me = _actor(args)
    result = roles.model_dump(mode="json") | {"you": me, "your_role": roles.role_of(me).value}
    text = "\n".join(
        [
            f"operators: {', '.join(roles.operators) or '(none)'}",
            f"viewers: {', '.join(roles.viewers) or '(none)'}",
            f"everyone else: {roles.default_role.value}",
            f"you ({me}): {roles.role_of(me).value}   (file: {services.access.roles_path(ws)})",
        ]
    )
    return result, text


def cmd_events(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    filters = {
        "system": args.system,
        "actor": args.by,
        "action": args.action,
        "action_prefix": args.action_prefix,
        "since": _when("--since", args.since),
        "until": _when("--until", args.until),
        "exclude_actions": services.FLEET_LOAD_ACTIONS if args.hide_fleet_load else None,
    }
    if args.csv:
        Path(args.csv).write_bytes(services.events_csv(ws, **filters))
        return {"csv": args.csv}, f"wrote {args.csv}"
    frame = services.list_events(ws, **filters, limit=args.limit)
    text = text_table(frame.to_dicts(), ["ts", "actor", "system", "action", "reason"])
    return {"events": frame}, text


def _kpi_lines(metrics: Any) -> list[str]:
    lines = [f"KPIs as of {metrics.as_of:%Y-%m-%d %H:%M} UTC"]
    for target in metrics.targets():
        mark = "NOT MET" if target.measured and not target.met else target.verdict()
        lines.append(
            f"  {target.label:20s} {target.shown():>16s}  target {target.direction} "
            f"{units.kpi(target.target, target.unit)}  {mark}"
        )
    lines.append(f"  systems migrated     {metrics.systems_migrated} / {metrics.systems_total}")
    lines.append(f"  migration rate       {metrics.migration_rate:.2f} systems/day")
    lines.append(f"success score {metrics.success_score:.3f} = mean of")
    lines += [f"  {p.name:12s} {p.value:6.2f}  {p.formula}" for p in metrics.score_parts()]
    return lines


def cmd_kpis(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    metrics = services.kpis(ws, _when("--as-of", args.as_of))
    result = {
        **metrics.model_dump(mode="json"),
        "success_score": metrics.success_score,
        "score_parts": metrics.score_parts(),
        "targets": metrics.targets(),
    }
    return result, "\n".join(_kpi_lines(metrics))


def cmd_timeline(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.start:
        try:
            start = dt.date.fromisoformat(args.start)
        except ValueError:
            raise InputError("--start", "value", "a date YYYY-MM-DD", args.start) from None
        services.set_plan_start(ws, start, actor=_actor(args), reason=args.reason)
    view = services.overview(ws, _when("--as-of", args.as_of))
    fc = view.timeline.forecast
    lines = [f"plan from {view.plan.start_date}, planned finish {fc.planned_finish}"]
    for ph in view.timeline.phases:
        actual = f"started {ph.actual_start:%Y-%m-%d}" if ph.actual_start else "not started"
        lines.append(
            f"  phase {ph.number} {ph.name:11s} {ph.planned_start} .. {ph.planned_end}  "
            f"{ph.migrated}/{ph.systems} migrated, {actual}"
        )
    if fc.forecast_finish:
        slip = f"{fc.slip_days:+d} days vs plan"
        lines.append(f"forecast finish {fc.forecast_finish} ({slip}): {fc.explanation}")
    else:
        lines.append(f"no forecast: {fc.explanation}")
    result = {"timeline": view.timeline, "systems": view.schedule, "burn_up": view.burn_up}
    return result, "\n".join(lines)


def cmd_hold(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.release:
        released = services.release(ws, args.name, actor=_actor(args), reason=args.reason)
        return {"released": released}, f"{args.name}: hold released (it was: {released.reason})"
    placed = services.hold(ws, args.name, actor=_actor(args), reason=args.reason, owner=args.owner)
    return {"hold": placed}, placed.sentence()


def cmd_recorded(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    if args.forget:
        if not args.reason:
            raise InputError("recorded --forget", "--reason", "why the recorded requests are deleted")
        gone = services.forget_recorded_requests(ws, args.name, actor=_actor(args), reason=args.reason)
        text = f"{args.name}: deleted {gone['bodies']} request bodies of {_runs(len(gone['runs']))}"
        if gone["left_recording"]:
            text += f" (kept, still recording: {', '.join(gone['left_recording'])})"
        return {"forgotten": gone}, text
    frame = services.recorded_requests(ws, args.name)
    if not frame.height:
        return {"recorded": []}, f"{args.name}: no request bodies kept"
    rows = frame.with_columns(pl.col("first_kept").dt.strftime("%Y-%m-%d %H:%M:%S")).to_dicts()
    columns = ["run_id", "endpoint", "kept", "kept_bytes", "requests", "too_large", "first_kept", "damaged"]
    total = f"\n{frame['kept'].sum()} request bodies kept ({frame['kept_bytes'].sum()} bytes) in "
    return {"recorded": frame}, text_table(rows, columns) + total + _runs(frame["run_id"].n_unique())


def _runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def cmd_approve(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    frame = services.approve(ws, args.name, actor=_actor(args), reason=args.reason)
    names = ", ".join(frame["actor"].to_list())
    return {"approvals": frame}, f"{args.name}: the newest verdict is approved by {names}"


def _settings(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError("--set", pair, "SECTION.KEY=VALUE, e.g. rule.max_latency_increase=0.2", pair)
        out[key.strip()] = value.strip()
    return out


def cmd_rejudge(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    result = services.rejudge(
        ws,
        args.name,
        actor=_actor(args),
        run_id=args.run,
        overrides=_settings(args.set or []),
        policy_path=Path(args.policy) if args.policy else None,
        reason=args.reason,
    )
    lines = [
        f"{args.name} run {result.run_id}: {result.original.verdict} (verdict {result.original_id}) "
        f"-> {result.rejudged.verdict} under the edited policy",
        *(f"  policy {c.what}: {c.before} -> {c.after}" for c in result.policy_changes),
        *(f"  outcome {c.what}: {c.before} -> {c.after}" for c in result.outcome_changes),
        *(f"  {r}" for r in result.rejudged.reasons),
        "(recorded beside the original; Promote still acts on the original verdict)",
    ]
    return result, "\n".join(lines)


def cmd_risks(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    views = services.risks(ws, _when("--as-of", args.as_of))
    chances = services.optimisations(ws)
    lines = []
    for r in views:
        mark = "MATERIALISED" if r.materialised else "not materialised"
        lines.append(f"[{r.level}] {r.description} (owner: {r.owner}): {mark}")
        lines.append(f"    mitigation: {r.mitigation}")
        lines += [f"    - {e}" for e in r.evidence]
        lines += [f"    (old systems, not the migration's) {e}" for e in r.old_system]
        if r.systems:
            lines.append(f"    systems: {', '.join(r.systems)}")
    lines.append("optimisation opportunities:")
    for o in chances:
        lines.append(f"  {o.area}: {o.action} ({o.impact})")
        lines += [f"    - {f.system}: {f.measured} -> {f.suggests}" for f in o.findings]
        if o.note:
            lines.append(f"    {o.note}")
    result = {
        "risks": views,
        "materialised": [r.id for r in views if r.materialised],
        "optimisations": chances,
    }
    return result, "\n".join(lines)


def cmd_playbook(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    target, flag = (args.tick, "--tick") if args.tick is not None else (args.untick, "--untick")
    changed = None
    if target is not None:
        playbook, sep, step = target.partition(":")
        if not (sep and playbook and step):
            raise InputError(flag, "value", "PLAYBOOK:STEP, e.g. data_corruption:stop_migration", target)
        changed = services.tick_playbook(
            ws, playbook, step, args.tick is not None, actor=_actor(args), reason=args.reason or ""
        )
    elif args.reason is not None:
        raise InputError("playbook", "--reason", "--tick or --untick with it")
    views = services.playbooks(ws)
    lines = []
    for c in views:
        lines.append(f"{c.title} [{c.id}] ({c.done_count}/{len(c.steps)} done): {c.when}")
        for s in c.steps:
            who = f"  ({s.actor}, {s.ts:%Y-%m-%d %H:%M}{': ' + s.reason if s.reason else ''})" if s.ts else ""
            lines.append(f"  [{'x' if s.done else ' '}] {c.id}:{s.id}  {s.text}{who}")
    result = {"playbooks": views, "changed": changed}
    return result, "\n".join(lines)


def cmd_report(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    report = services.post_mortem_file(
        ws, args.scope, args.format, generated_by=_actor(args), as_of=_when("--as-of", args.as_of)
    )
    target = Path(args.out) if args.out else Path(report.file_name)
    try:
        target.write_bytes(report.data)
    except OSError as exc:
        raise InputError("--out", "path", "a writable file", str(target)) from exc
    result = {"file": str(target), "format": args.format, "scope": args.scope, "bytes": len(report.data)}
    return result, f"wrote {target} ({len(report.data):,} bytes)"


def cmd_notify(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    lines: list[str] = []
    result: dict[str, Any] = {}
    if args.test:
        probe = services.send_test_notification(ws, args.test, actor=_actor(args))
        outcome = f"accepted (HTTP {probe.http_status})" if probe.ok else f"FAILED: {probe.error}"
        signed = "signed" if probe.signed else "unsigned: not a webhook of notify.toml"
        lines.append(f"test notification to {probe.target} ({probe.url}, {signed}): {outcome}")
        result["test"] = probe
    if args.flush or args.retry_failed:
        flushed = services.flush_notifications(ws, actor=_actor(args), retry_failed=args.retry_failed)
        rep = flushed.report
        requeued = f" ({flushed.requeued} re-queued)" if flushed.requeued else ""
        lines.append(
            f"flushed: {rep.count('delivered')} delivered, {rep.count('failed')} failed, "
            f"{rep.count('pending')} still pending{requeued}"
        )
        lines += [
            f"  {r.webhook} #{r.id} {r.kind} {r.system or ''}: {r.last_error}"
            for r in rep.results
            if r.last_error
        ]
        result["flush"] = flushed
    shown = None if args.all else ["pending", "failed"]
    status = services.notifications(ws, statuses=shown, limit=args.limit)
    if not status.configured:
        lines.append(f"no {status.file}: no webhooks (README, Notifications, shows one)")
    for hook in status.webhooks:
        lines.append(f"{hook.name}  {hook.url}  kinds: {', '.join(hook.kinds)}  secret: {hook.secret}")
    counts = status.counts
    lines.append(
        f"deliveries: {counts['delivered']} delivered, {counts['pending']} pending, {counts['failed']} failed"
    )
    if status.deliveries.height:
        lines.append(
            text_table(
                status.deliveries.to_dicts(),
                ["id", "created_at", "webhook", "kind", "system", "status", "attempts", "last_error"],
            )
        )
    lines += [f"problem: {p}" for p in status.problems]
    result |= services.notify.as_dict(status)
    return result, "\n".join(lines)


def cmd_digest(args: argparse.Namespace, ws: Workspace) -> tuple[Any, str]:
    as_of = _when("--as-of", args.as_of)
    sent = services.send_digest(ws, as_of, actor=_actor(args)) if args.send else None
    digest = sent if sent is not None else services.standup_digest(ws, as_of)
    result: dict[str, Any] = {"as_of": digest.as_of, "markdown": digest.markdown, "file": None, "sent": sent}
    text = digest.markdown
    if args.out:
        try:
            Path(args.out).write_text(digest.markdown, encoding="utf-8")
        except OSError as exc:
            raise InputError("--out", "path", "a writable file", args.out) from exc
        result["file"] = args.out
        text = f"wrote {args.out} ({len(digest.markdown):,} characters)"
    if sent is not None:
        text += "".join(
            f"\nsent to {d.webhook}: {d.status}" + (f" ({d.last_error})" if d.last_error else "")
            for d in sent.deliveries
        )
    return result, text


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Switchyard migration engine")
    parser.add_argument("--workspace", help="workspace folder (default $SWITCHYARD_WORKSPACE or ./workspace)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON output")
    common.add_argument("--actor", default=None, help="who is acting (default $SWITCHYARD_ACTOR or OS user)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = add("init", cmd_init, "create the workspace and load a fleet (the bundled sample by default)")
    p.add_argument("--fleet", help="fleet folder to load instead of the bundled sample")
    p = add("import-fleet", cmd_import_fleet, "load another fleet folder into the inventory")
    p.add_argument("fleet_dir", help="folder with one sub-folder per system")
    p = add("inventory", cmd_inventory, "list the fleet with category, priority, phase, state, v1 result")
    p.add_argument("--category")
    p.add_argument("--state")
    p = add("validate-v1", cmd_validate_v1, "run the v1 validator and store the results")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--all", action="store_true", help="validate every system")
    for name, handler, text in (
        ("convert", cmd_convert, "convert systems to v2 (port-based) with a report of every decision"),
        ("validate", cmd_validate, "run the PortBasedValidationGate on converted systems"),
    ):
        p = add(name, handler, text)
        p.add_argument("names", nargs="*", metavar="NAME")
        p.add_argument("--phase", type=int, help="every system of this plan phase (1-4)")
        p.add_argument("--all", action="store_true", help="every system")
    p = add("show", cmd_show, "both blueprints of a system and its conversion report")
    p.add_argument("name")
    p = add("checklist", cmd_checklist, "the pre-migration checklist (ready when every item holds)")
    p.add_argument("name")
    p.add_argument("--ack", help="record an acknowledgement first (team_notified)")
    p.add_argument("--note", help="a note with the acknowledgement")
    p = add("deploy", cmd_deploy, "start green beside blue behind the gateway")
    p.add_argument("name")
    p.add_argument("--strategy", default="blue_green", help="blue_green | canary | direct")
    p.add_argument("--reason", default="deploy")
    p.add_argument("--monitor", type=float, help="monitor window in seconds for direct (default: policy)")
    p.add_argument("--warm", type=float, help="seconds old stays warm after the switch (default: policy)")
    p = add(
        "parallel-run", cmd_parallel_run, "mirror traffic to green and record samples (--stop to end one)"
    )
    p.add_argument("name")
    p.add_argument("--duration", type=float, help="seconds (default: policy, the seed's 24 h)")
    p.add_argument("--bucket", type=float, help="seconds per bucket (default: policy, 60)")
    p.add_argument("--rps", type=float, help="requests per second (default 50; with --extend: the run's)")
    p.add_argument("--stop", action="store_true", help="ask the running run to stop")
    p.add_argument(
        "--extend",
        action="store_true",
        help="run --duration seconds more after INCONCLUSIVE, judged with the judged run's samples",
    )
    p = add(
        "calibrate",
        cmd_calibrate,
        "A/A run: old mirrored to a copy of old; what the judge reads between them is the measurement's bias",
    )
    p.add_argument("name")
    p.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    p.add_argument("--rps", type=float, default=40.0, help="requests per second (default 40)")
    p.add_argument("--show", action="store_true", help="show the newest calibration instead of running one")
    p = add(
        "capacity",
        cmd_capacity,
        "each version's sustainable req/s, closed-loop on loopback, side by side (the throughput KPI)",
    )
    p.add_argument("name")
    p.add_argument("--rounds", type=int, default=3, help="turns per version, alternating (default 3)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds per turn (default 2)")
    p.add_argument("--connections", type=int, default=8, help="clients sending back to back (default 8)")
    p.add_argument("--show", action="store_true", help="show the newest probe instead of running one")
    for name, handler, text in (
        ("promote", cmd_promote, "switch traffic to green, watch the monitor window, decommission blue"),
        ("rollback", cmd_rollback, "back to the old version: stop green, restore blue, verify, document"),
    ):
        p = add(name, handler, text)
        p.add_argument("name")
        p.add_argument("--reason", required=True, help="why (recorded with your name)")
        p.add_argument(
            "--expected-version",
            type=int,
            help="the version 'status' showed; refused if the system changed since (a stale command)",
        )
        if name == "promote":
            p.add_argument("--monitor", type=float, help="monitor window in seconds (default: policy, 300)")
            p.add_argument("--rps", type=float, help="workload during the window (default: policy)")
            p.add_argument("--warm", type=float, help="seconds old stays warm after (default: policy)")
    p = add("status", cmd_status, "state, route, processes, latest run and verdict of a system")
    p.add_argument("name")
    add("down", cmd_down, "stop every process this workspace started")
    p = add("backup-store", cmd_backup_store, "copy the store, samples and documents to a new backup folder")
    p.add_argument("--to", required=True, metavar="DIR", help="folder to create the backup in")
    p = add("restore-store", cmd_restore_store, "replace the workspace's data with a verified backup")
    p.add_argument("source", metavar="BACKUP", help="a folder written by backup-store")
    p.add_argument("--reason", required=True, help="why (recorded with your name)")
    p = add("judge", cmd_judge, "go/no-go verdict on a system's latest parallel run, or on a samples file")
    p.add_argument("name", nargs="?")
    p.add_argument("--samples", help="file with columns ts, version, latency_ms, ok[, endpoint, match]")
    p.add_argument("--validation-rate", type=float, default=None, help="validation success rate of new")
    p.add_argument("--policy", help="policy file (default data/policy.toml)")
    p.add_argument(
        "--source",
        choices=services.METRICS_SOURCES,
        help="judge NAME's run from this metrics source (prometheus: the policy's [prometheus] section)",
    )
    p.add_argument("--window", type=float, help="judge only the run's last seconds")
    p = add("export-argo", cmd_export_argo, "Argo Rollouts Rollout and AnalysisTemplate for a system")
    p.add_argument("name")
    p.add_argument("--strategy", default="canary", choices=["canary", "blue_green"])
    p.add_argument(
        "--traffic",
        default="replicas",
        choices=["replicas", "nginx", "smi"],
        help="how a canary gets its share: one Service over both versions' pods (weights by pod count), "
        "or Argo's traffic routing through nginx ingress or an SMI mesh",
    )
    p.add_argument("--replicas", type=int, default=4, help="pods of the system (default 4)")
    p.add_argument("--policy", help="policy file (default data/policy.toml; [kubernetes] scrape_interval_s)")
    p.add_argument("--image", help="container image of the converted system (default: a placeholder)")
    p.add_argument("--prometheus", help="Prometheus address as the cluster sees it")
    p.add_argument("--out", help="write the YAML to this file instead of printing it")
    p = add("roles", cmd_roles, "who is an operator and who a viewer; --grant NAME --role R to change it")
    p.add_argument("--grant", metavar="NAME", help="list NAME (user or e-mail) under --role (operators only)")
    p.add_argument("--role", choices=["operator", "viewer"], help="the role to grant (default: operator)")
    p = add("events", cmd_events, "the audit log, newest first")
    p.add_argument("--system")
    p.add_argument("--by", help="only events by this actor")
    p.add_argument("--action", help="exact action, e.g. state:promoted")
    p.add_argument("--action-prefix", help="actions starting with this, e.g. state:")
    p.add_argument("--since", help="from this date or ISO time (inclusive)")
    p.add_argument("--until", help="up to this date or ISO time (exclusive)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--csv", metavar="FILE", help="write every matching event to FILE as CSV")
    p.add_argument(
        "--hide-fleet-load",
        action="store_true",
        help="leave out the per-system records of fleet loads (import, v1 validation)",
    )
    p = add("kpis", cmd_kpis, "the seed's migration KPIs and success score, measured from the store")
    p.add_argument("--as-of", help="as of this date or ISO time (default now)")
    p = add("timeline", cmd_timeline, "plan vs actual per phase and the forecast finish date")
    p.add_argument("--as-of", help="as of this date or ISO time (default now)")
    p.add_argument("--start", help="set the plan's start date first (YYYY-MM-DD)")
    p.add_argument("--reason", default="plan start date set")
    p = add("risks", cmd_risks, "the seed's risk matrix with live evidence, and optimisation opportunities")
    p.add_argument("--as-of", help="as of this date or ISO time (default now)")
    p = add("playbook", cmd_playbook, "contingency playbooks and the cleanup checklist; tick steps as done")
    tick = p.add_mutually_exclusive_group()
    tick.add_argument("--tick", metavar="PLAYBOOK:STEP", help="mark a step done (operators only)")
    tick.add_argument("--untick", metavar="PLAYBOOK:STEP", help="mark a step not done (needs --reason)")
    p.add_argument("--reason", help="why (recorded with your name; required with --untick)")
    p = add("hold", cmd_hold, "put a system on HOLD (traffic stays, nothing moves) or --release it")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (recorded with your name)")
    p.add_argument("--owner", help="who owns the hold (default: you)")
    p.add_argument("--release", action="store_true", help="end the hold instead")
    p = add(
        "recorded", cmd_recorded, "request bodies the gateway kept of a system's runs (the gate replays them)"
    )
    p.add_argument("name")
    p.add_argument("--forget", action="store_true", help="delete them (not those of a run still recording)")
    p.add_argument("--reason", help="why, with --forget (recorded with your name)")
    p = add("approve", cmd_approve, "approve promoting a system on its newest GO verdict (four eyes)")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (recorded with your name)")
    p = add("rejudge", cmd_rejudge, "judge a finished run again under another policy, without traffic")
    p.add_argument("name")
    p.add_argument("--run", help="run id (default: the run of the newest verdict)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="policy setting to change")
    p.add_argument("--policy", help="judge under this policy file instead of data/policy.toml")
    p.add_argument("--reason", default="", help="why (recorded with your name)")
    p = add("report", cmd_report, "post-mortem of the migration, a phase or a system: Markdown, HTML, PDF")
    p.add_argument("--scope", default="migration", help="migration | phase:N | system:NAME")
    p.add_argument("--format", default="md", choices=["md", "html", "pdf"])
    p.add_argument("--out", help="file to write (default post-mortem_<scope>_<date>.<format>)")
    p.add_argument("--as-of", help="as of this date or ISO time (default now)")
    p = add("notify", cmd_notify, "webhooks of notify.toml and pending or failed deliveries; --flush sends")
    p.add_argument("--flush", action="store_true", help="send every pending notification now (operators)")
    p.add_argument("--retry-failed", action="store_true", help="with --flush: give failed ones another round")
    p.add_argument("--test", metavar="URL", help="send a test notification to a webhook (name or URL)")
    p.add_argument("--all", action="store_true", help="list delivered ones too")
    p.add_argument("--limit", type=int, default=50)
    p = add("digest", cmd_digest, "the daily standup digest as Markdown; --send posts it to the webhooks")
    p.add_argument("--as-of", help="as of this date (midnight UTC) or ISO time (default now)")
    p.add_argument("--out", metavar="FILE", help="write the Markdown to FILE")
    p.add_argument("--send", action="store_true", help="post it to webhooks subscribed to digest (operators)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ws = Workspace.at(args.workspace)
    try:
        judging_a_file = args.command == "judge" and not args.name
        if args.command not in WORKSPACE_FREE and not judging_a_file and not ws.exists():
            raise SwitchyardError(f"{ws.root}: no workspace here yet; run 'python -m engine init' first")
        result, text = args.handler(args, ws)
    except SwitchyardError as exc:
        print(f"error: {printable(str(exc), one_line=True)}", file=sys.stderr)
        if args.json:
            payload = exc.to_dict() if isinstance(exc, InputError) else {"message": str(exc)}
            print(json.dumps({"error": payload}))
        dispatch_quietly(ws)  # a refused change may still have recorded something to announce
        return exc.exit_code
    _emit(json.dumps(_to_jsonable(result), indent=2) if args.json else printable(text))
    dispatch_quietly(ws)  # cheap without notify.toml; never raises
    return 0


def _emit(text: str) -> None:
    """Print the result; a reader that stopped early (``| head``) is not an error of the command.

    The work is done and recorded by then, so a closed pipe must not turn it
    into a traceback: stdout is pointed at /dev/null so that Python's own
    flush at exit does not fail again (the recipe of Python's signal docs).
    """
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
