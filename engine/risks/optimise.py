"""The seed's post-migration optimisation opportunities, each with the measured figures that point at it.

The seed lists four areas (buffer sizes, concurrency, batch sizes,
checkpoint frequency) with an action and an impact, and nothing to say
*where* to act. Switchyard has the figures: the parallel-run samples of the
new version (latency quantiles, requests per second, and from both the
requests in flight by Little's law), the effective recipe config of each
component in ``generated_systems_v2/<name>/blueprint.yaml`` (concurrency,
batch size, buffer, the recipe's defaults filled in), the newest verdict's
throughput and latency change, and how long rollbacks took to restore a
system. Each finding names the system and the figure; an area with nothing
measured says "no measurements yet" and invents no number.

Only systems that ran (a parallel run with samples) or were rolled back are
read, so the page does not parse every blueprint of the fleet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel, ValidationError

from engine.errors import SwitchyardError
from engine.judge.policy import Policy
from engine.models.blueprint_v2 import load_v2_blueprint
from engine.parallel.compare import sketch_quantiles
from engine.runtime.recipes import RECIPES, RecipeConfig
from engine.store.aggregates import run_parts
from engine.store.db import query_frame
from engine.workspace import Workspace, safe_child

NO_MEASUREMENTS = "no measurements yet"
RULE = Policy().rule


class Finding(BaseModel):
    """One system's figures for one area, and what they suggest."""

    system: str
    measured: str
    suggests: str


class Opportunity(BaseModel):
    """One of the seed's areas with its findings; ``note`` says why there are none."""

    id: str
    area: str
    action: str
    impact: str
    findings: list[Finding]
    note: str | None = None


SEED_AREAS: tuple[tuple[str, str, str, str], ...] = (
    ("buffer_sizes", "Buffer Sizes", "Tune based on actual usage patterns", "Memory efficiency"),
    ("concurrency", "Concurrency", "Adjust worker counts per component", "CPU utilization"),
    ("batch_sizes", "Batch Sizes", "Optimize for throughput vs latency", "Performance"),
    ("checkpoint_frequency", "Checkpoint Frequency", "Balance durability vs performance", "Recovery time"),
)
"""The seed's ``PostMigrationOptimizer.identify_optimizations``, as is: (id, area, action, impact)."""


@dataclass(frozen=True)
class ComponentConfig:
    name: str
    recipe: str
    concurrency: int
    batch_size: int
    buffer: int
    capacity: int | None


@dataclass(frozen=True)
class Load:
    """What the newest parallel run measured on one system (per version)."""

    run_id: str
    new: dict[str, Any]
    old: dict[str, Any] | None


# --------------------------------------------------------------------------- reading


def _latest_runs(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """system, run_id: the newest parallel run of each system."""
    return query_frame(
        con,
        """
        SELECT system, id AS run_id FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY started_at DESC) AS rn
            FROM runs WHERE kind = ?
        ) WHERE rn = 1 ORDER BY system
        """,
        ["parallel"],
    )


def load_by_version(versions: pl.DataFrame, seconds: pl.DataFrame) -> pl.DataFrame:
    """Per version: samples, p50/p95 of successful requests, requests per second (peak, median) and the
    peak of requests in flight, rate x mean latency per second (Little's law), from a run's aggregates.

    ``versions`` and ``seconds`` are the run's files' shares
    (:func:`engine.store.aggregates.run_parts`); a second split over files is
    summed first.
    """
    per_second = (
        seconds.group_by("version", "second")
        .agg(
            pl.col("requests").sum().alias("n"), pl.col("ok_latency_sum").sum(), pl.col("ok_latency_n").sum()
        )
        .with_columns(
            pl.when(pl.col("ok_latency_n") > 0)
            .then(pl.col("ok_latency_sum") / pl.col("ok_latency_n"))
            .alias("mean_ms")
        )
        .group_by("version")
        .agg(
            pl.col("n").max().alias("peak_rps"),
            pl.col("n").median().alias("median_rps"),
            (pl.col("n") * pl.col("mean_ms").fill_null(0) / 1000.0).max().alias("peak_in_flight"),
        )
    )
    rows = []
    for (version,), group in versions.group_by("version"):
        if group.height == 1:
            quantiles = {"p50_ms": group["p50"][0], "p95_ms": group["p95"][0]}
        else:
            merged = sketch_quantiles(group["sketch_bins"], group["sketch_counts"], {"p50": 0.5, "p95": 0.95})
            quantiles = {"p50_ms": merged["p50"], "p95_ms": merged["p95"]}
        rows.append({"version": version, "samples": int(group["requests"].sum()), **quantiles})
    schema = {"version": pl.String, "samples": pl.Int64, "p50_ms": pl.Float64, "p95_ms": pl.Float64}
    return pl.DataFrame(rows, schema=schema).join(per_second, on="version").sort("version")


def _load(ws: Workspace, system: str, run_id: str) -> Load | None:
    """Latency quantiles, requests per second and requests in flight of a run's samples, per version.

    None when the run has no samples yet, or its segments lack the columns
    (version, latency_ms, ok, ts) a measurement needs.
    """
    try:
        parts = run_parts(ws, system, [run_id], None, ("versions", "seconds"))
    except (duckdb.Error, OSError):
        return None
    if parts is None:
        return None
    stats = load_by_version(parts["versions"], parts["seconds"])
    by_version = {r["version"]: r for r in stats.iter_rows(named=True)}
    if "new" not in by_version:
        return None
    return Load(run_id, by_version["new"], by_version.get("old"))


def _configs(ws: Workspace, system: str) -> list[ComponentConfig] | None:
    """Each component's effective recipe config (defaults filled in); None without a loadable v2 blueprint."""
    try:
        path = safe_child(ws.v2_dir, system) / "blueprint.yaml"
        if not path.is_file():
            return None
        blueprint = load_v2_blueprint(path)
    except SwitchyardError:
        return None
    out = []
    for comp in blueprint.components:
        recipe = RECIPES.get(comp.recipe)
        try:
            cfg = (recipe.Config if recipe else RecipeConfig).model_validate(comp.config)
        except ValidationError:
            cfg = RecipeConfig()
        out.append(
            ComponentConfig(
                comp.name,
                comp.recipe,
                cfg.concurrency,
                cfg.batch_size,
                cfg.buffer,
                getattr(cfg, "capacity", None) if comp.recipe == "Store" else None,
            )
        )
    return out


def _latest_verdicts(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """The newest verdict per system: run_id and its criteria by name."""
    frame = query_frame(
        con,
        """
        SELECT system, run_id, CAST(result AS VARCHAR) AS result FROM (
            SELECT *, row_number() OVER (PARTITION BY system ORDER BY ts DESC, id DESC) AS rn FROM verdicts
        ) WHERE rn = ? ORDER BY system
        """,
        [1],
    )
    out = {}
    for row in frame.iter_rows(named=True):
        criteria = {c.get("name"): c for c in json.loads(row["result"]).get("criteria") or []}
        out[row["system"]] = {"run_id": row["run_id"], "criteria": criteria}
    return out


def _recoveries(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """system, seconds, kind: how long each finished rollback took, and each emergency lasted."""
    rollbacks = query_frame(
        con,
        """
        SELECT system, epoch(ended_at) - epoch(started_at) AS seconds, 'rollback' AS kind
        FROM operations WHERE kind = ? AND ended_at IS NOT NULL ORDER BY started_at
        """,
        ["rollback"],
    )
    emergencies = query_frame(
        con,
        """
        SELECT system, seconds, 'emergency' AS kind FROM (
            SELECT system, json_extract_string(after, '$.state') AS state,
                   epoch(lead(ts) OVER (PARTITION BY system ORDER BY ts, id)) - epoch(ts) AS seconds
            FROM events WHERE starts_with(action, ?)
        ) WHERE state = ? AND seconds IS NOT NULL ORDER BY system
        """,
        ["state:", "emergency"],
    )
    return pl.concat([rollbacks, emergencies], how="vertical_relaxed")


# --------------------------------------------------------------------------- findings


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _span(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def _buffer_finding(system: str, comps: list[ComponentConfig], load: Load) -> Finding:
    buffers = [c.buffer for c in comps]
    smallest = min(buffers)
    in_flight = float(load.new["peak_in_flight"] or 0)
    measured = (
        f"input buffers hold {_span(buffers)} messages ({len(comps)} components); at most "
        f"{in_flight:.1f} requests in flight on new (peak {load.new['peak_rps']} req/s, run {load.run_id})"
    )
    if in_flight >= smallest / 2:
        suggests = f"raise the smallest buffer ({smallest}): the peak fills half of it"
    elif in_flight * 8 < smallest:
        target = 1
        while target < max(4 * in_flight, 4):
            target *= 2
        suggests = f"buffers are {smallest / max(in_flight, 0.1):.0f}x the peak: about {target} would hold it"
    else:
        suggests = "sized for the measured peak"
    return Finding(system=system, measured=measured, suggests=suggests)


def _concurrency_finding(system: str, comps: list[ComponentConfig], load: Load) -> Finding:
    workers = [c.concurrency for c in comps]
    fewest = min(workers)
    p50, p95 = load.new["p50_ms"], load.new["p95_ms"]
    in_flight = float(load.new["peak_in_flight"] or 0)
    tail = p95 / p50 if p50 and p95 else None
    old_tail = None
    if load.old and load.old["p50_ms"] and load.old["p95_ms"]:
        old_tail = load.old["p95_ms"] / load.old["p50_ms"]
    measured = f"{_span(workers)} worker(s) per component; new p95 {_ms(p95)} vs p50 {_ms(p50)}"
    if tail is not None:
        measured += f" ({tail:.1f}x" + (f"; old {old_tail:.1f}x)" if old_tail else ")")
    measured += f"; at most {in_flight:.1f} requests in flight"
    if tail is not None and in_flight > fewest and (old_tail is None or tail > 1.2 * old_tail):
        suggests = f"requests queue behind {fewest} worker(s): raise concurrency on the busiest component"
    elif fewest > 1 and in_flight < fewest / 4:
        suggests = f"{fewest} workers for {in_flight:.1f} requests in flight: fewer would free CPU"
    else:
        suggests = "the measured load needs no change"
    return Finding(system=system, measured=measured, suggests=suggests)


def _batch_finding(
    system: str, comps: list[ComponentConfig], load: Load, verdict: dict[str, Any] | None
) -> Finding:
    batches = [c.batch_size for c in comps]
    measured = (
        f"batch_size {_span(batches)}; new served {load.new['median_rps']:.0f} req/s in its median second "
        f"(peak {load.new['peak_rps']})"
    )
    tp = lat = None
    if verdict:
        tp = (verdict["criteria"].get("throughput_change") or {}).get("observed")
        lat = (verdict["criteria"].get("latency_increase") or {}).get("observed")
        if tp is not None or lat is not None:
            tp_text = "n/a" if tp is None else f"{tp:+.1%}"
            lat_text = "n/a" if lat is None else f"{lat:+.1%}"
            measured += f"; verdict on run {verdict['run_id']}: throughput {tp_text}, latency {lat_text}"
    if tp is not None and tp < RULE.min_throughput_change:
        suggests = "throughput fell below the seed's -5 %: try larger batches"
    elif lat is not None and lat > RULE.max_latency_increase and max(batches) > 1:
        suggests = "latency rose past the seed's +10 % with batching on: try smaller batches"
    elif tp is None and lat is None:
        suggests = "no verdict yet to weigh throughput against latency"
    else:
        suggests = "within the seed's limits"
    return Finding(system=system, measured=measured, suggests=suggests)


def _checkpoint_finding(
    system: str, comps: list[ComponentConfig] | None, recoveries: pl.DataFrame
) -> Finding:
    rows = recoveries.filter(pl.col("system") == system)
    parts = []
    restores = rows.filter(pl.col("kind") == "rollback")["seconds"]
    if restores.len():
        parts.append(f"{restores.len()} rollback(s) took {restores.max():.1f} s at most to restore")
    waits = rows.filter(pl.col("kind") == "emergency")["seconds"]
    if waits.len():
        parts.append(f"{waits.len()} emergency(ies) lasted {waits.max() / 60:.0f} min at most")
    stores = [c for c in comps or [] if c.recipe == "Store"]
    if stores:
        held = ", ".join(f"{c.name} (capacity {c.capacity})" for c in stores)
        parts.append(f"state in memory only: {held}")
        suggests = "no checkpoint today: recovery is a restore from backups/; a periodic Store checkpoint"
        suggests += " would shorten it"
    elif comps is not None:
        suggests = "no Store component: stateless, a restart recovers it"
    else:
        suggests = "no v2 blueprint to read its state from"
    return Finding(system=system, measured="; ".join(parts), suggests=suggests)


def find_opportunities(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[Opportunity]:
    """The seed's four areas, each with the figures measured on the systems that ran or rolled back."""
    loads: dict[str, Load] = {}
    for row in _latest_runs(con).iter_rows(named=True):
        load = _load(ws, row["system"], row["run_id"])
        if load is not None:
            loads[row["system"]] = load
    recoveries = _recoveries(con)
    configs = {s: _configs(ws, s) for s in sorted(set(loads) | set(recoveries["system"].to_list()))}
    verdicts = _latest_verdicts(con)
    measured = {s: loads[s] for s in loads if configs.get(s)}
    findings: dict[str, list[Finding]] = {
        "buffer_sizes": [_buffer_finding(s, configs[s] or [], load) for s, load in measured.items()],
        "concurrency": [_concurrency_finding(s, configs[s] or [], load) for s, load in measured.items()],
        "batch_sizes": [
            _batch_finding(s, configs[s] or [], load, verdicts.get(s)) for s, load in measured.items()
        ],
        "checkpoint_frequency": [
            _checkpoint_finding(s, configs.get(s), recoveries)
            for s in sorted(set(recoveries["system"].to_list()))
        ],
    }
    notes = {
        "buffer_sizes": "no parallel run with samples on a converted system",
        "concurrency": "no parallel run with samples on a converted system",
        "batch_sizes": "no parallel run with samples on a converted system",
        "checkpoint_frequency": "no rollback or emergency to time a recovery by",
    }
    return [
        Opportunity(
            id=key,
            area=area,
            action=action,
            impact=impact,
            findings=findings[key],
            note=None if findings[key] else f"{NO_MEASUREMENTS}: {notes[key]}",
        )
        for key, area, action, impact in SEED_AREAS
    ]
