"""Switchyard's own decisions as Prometheus metrics, served by the gateway on ``GET /metrics``.

The gateway must never open the DuckDB store (one writing process at a time,
and it sits in front of every request), so the engine writes a snapshot,
``<workspace>/run/decisions.json``, whenever the routes are published and
whenever a verdict is recorded; the gateway renders it on each scrape:

* ``switchyard_state{system, state}``: 1 for the state a system is in, 0 for the others;
* ``switchyard_verdict{system, verdict}``: 1 for the newest verdict (GO, NO_GO, INCONCLUSIVE);
* ``switchyard_trigger_fired{system, trigger}``: 1 if the newest verdict or a later
  watched run (canary step, monitor window) fired that automatic rollback trigger;
* ``switchyard_hold{system}``: 1 while the system is on hold (promote and rollback refused);
* ``switchyard_decisions_updated_timestamp_seconds``: when the snapshot was taken.

The snapshot is also refreshed when any operator use case returns
(:func:`engine.access.operator_only`), so a hold, a conversion or a
re-judgement shows on the next scrape, not at the next route change.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from engine.metrics.exposition import Gauge, render
from engine.state import State
from engine.workspace import Workspace

VERDICTS = ("GO", "NO_GO", "INCONCLUSIVE")
TRIGGERS = (
    "validation_success_rate",
    "error_rate",
    "latency_p95_ratio",
    "throughput_ratio",
    "failed_health_checks",
)


def decisions_path(ws: Workspace) -> Path:
    """Beside the gateway's routes file, where the gateway looks for it."""
    return ws.run_dir / "decisions.json"


def _loads(text: Any) -> Any:
    if text is None:
        return None
    return json.loads(text) if isinstance(text, str) else text


def decisions_document(con: Any) -> dict[str, Any]:
    """Per system: its state, hold, newest verdict and the triggers fired since, read from the store."""
    # imported here: the gateway imports this module to render, and must not load the store
    from engine.governance.hold import current_holds
    from engine.store.db import query_frame

    systems = query_frame(con, "SELECT name, state FROM systems ORDER BY name")
    verdicts = query_frame(
        con,
        "SELECT system, ts, verdict, result FROM verdicts "
        "QUALIFY row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) = 1",
    )
    runs = query_frame(
        con,
        "SELECT system, ended_at, outcome FROM runs WHERE ended_at IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY system ORDER BY ended_at DESC) = 1",
    )
    held = set(current_holds(con)["system"].to_list())
    latest = {r["system"]: r for r in verdicts.iter_rows(named=True)}
    last_run = {r["system"]: r for r in runs.iter_rows(named=True)}
    out: dict[str, Any] = {}
    for row in systems.iter_rows(named=True):
        name = row["name"]
        entry: dict[str, Any] = {
            "state": row["state"],
            "verdict": None,
            "triggers": {},
            "held": name in held,
        }
        verdict = latest.get(name)
        if verdict is not None:
            entry["verdict"] = verdict["verdict"]
            result = _loads(verdict["result"]) or {}
            entry["triggers"] = {t["name"]: bool(t["fired"]) for t in result.get("triggers", [])}
        run = last_run.get(name)
        if run is not None and (verdict is None or run["ended_at"] > verdict["ts"]):
            fired = (_loads(run["outcome"]) or {}).get("fired")
            if fired:
                entry["triggers"][fired["name"]] = True
        out[name] = entry
    return {"updated_at": dt.datetime.now(dt.UTC).timestamp(), "systems": out}


def write_decisions(ws: Workspace) -> dict[str, Any]:
    """Take the snapshot and write it atomically (temp file, then rename); returns it."""
    ws.run_dir.mkdir(parents=True, exist_ok=True)
    from engine.store import connect  # here, so the gateway rendering a snapshot never loads the store

    with connect(ws.db_path) as con:
        document = decisions_document(con)
    target = decisions_path(ws)
    temp = target.with_suffix(".json.tmp")
    temp.write_text(json.dumps(document))
    os.replace(temp, target)
    return document


def render_decisions(document: dict[str, Any] | None) -> str:
    """The snapshot in the Prometheus text format (empty families when there is none yet)."""
    state = Gauge(
        "switchyard_state", "1 for the state the system is in, 0 for the others.", ("system", "state")
    )
    verdict = Gauge("switchyard_verdict", "1 for the newest verdict of the system.", ("system", "verdict"))
    fired = Gauge(
        "switchyard_trigger_fired", "1 if the automatic rollback trigger fired.", ("system", "trigger")
    )
    hold = Gauge("switchyard_hold", "1 while the system is on hold.", ("system",))
    updated = Gauge("switchyard_decisions_updated_timestamp_seconds", "When the snapshot was taken.", ())
    document = document or {}
    for name, entry in sorted(document.get("systems", {}).items()):
        for s in State:
            state.set(1.0 if entry.get("state") == s.value else 0.0, name, s.value)
        hold.set(1.0 if entry.get("held") else 0.0, name)
        if entry.get("verdict"):
            for v in VERDICTS:
                verdict.set(1.0 if entry["verdict"] == v else 0.0, name, v)
        triggers = entry.get("triggers") or {}
        if triggers or entry.get("verdict"):
            for t in sorted(set(TRIGGERS) | set(triggers)):
                fired.set(1.0 if triggers.get(t) else 0.0, name, t)
    if "updated_at" in document:
        updated.set(float(document["updated_at"]))
    return render([state, hold, verdict, fired, updated])


def read_and_render(path: Path) -> str:
    """What the gateway answers on ``/metrics``: the snapshot at ``path`` rendered (a missing or broken file
    gives empty families, never an error: a scrape must not fail because no decision was taken yet)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        document = None
    return render_decisions(document)


def refresh_decisions(ws: Workspace) -> bool:
    """:func:`write_decisions`, best effort: the snapshot is for dashboards and must never stand in the
    way of a switch or a rollback, so a failure (store busy, disk full) leaves the old one; returns
    whether it was written."""
    try:
        write_decisions(ws)
    except Exception:  # noqa: BLE001 - see above: reporting must not break the operation it reports on
        return False
    return True
