"""Writing a converted system to ``generated_systems_v2/<name>/`` in the workspace.

The folder holds ``blueprint.yaml`` (the v2 blueprint), ``conversion_report.json``
and ``components/<component>.yaml``: each generated component with its recipe,
config and resolved ports; a hosted component's code is copied beside it as
``components/<component>.py`` (the v1 file byte for byte). Files are written to a staging folder
(``.tmp-<name>-<pid>-<hex>``) and swapped in by two renames (the previous folder
moves aside to ``.old-<name>-<pid>-<hex>`` first), so a crash never leaves half
a system; the v1 folder is never touched.

The use case records the conversion in the store *between* staging and swap:
a crash before that commit leaves only a staging folder of a dead process
(:func:`sweep_leftovers` removes it, the old files stand, as the store says);
a crash after it is rolled forward by :func:`finish_swap` from the staging
folder the store names. Either way the store and the files agree again.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from engine.convert.converter import ConversionResult
from engine.models.common import dump_yaml
from engine.runtime.recipes import RECIPES
from engine.workspace import safe_child


def component_document(result: ConversionResult, name: str) -> dict:
    """The generated component: recipe, config and its port signature with bindings."""
    comp = next(c for c in result.blueprint.components if c.name == name)
    recipe = RECIPES[comp.recipe]
    bound = {b.source: b.target for b in result.blueprint.bindings}
    doc: dict = {"name": comp.name, "recipe": comp.recipe, "config": comp.config}
    try:
        instance = recipe.parse(comp.config)
    except Exception:  # noqa: BLE001 - an invalid config is reported by the gate; document what we can
        return doc
    doc["inputs"] = {port: schema for port, schema in instance.inputs().items()}
    doc["outputs"] = {
        p.name: {
            "for": p.ref,
            "schema": p.schema,
            "required": p.required,
            "bound_to": bound.get(f"{name}.{p.name}"),
        }
        for p in instance.outputs()
    }
    return doc


def _side_name(kind: str, name: str) -> str:
    """``.tmp-<name>-<pid>-<hex>`` or ``.old-...``: the pid says whose it is (system names have no ``-``)."""
    return f".{kind}-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def stage_v2_system(result: ConversionResult, v2_root: Path) -> Path:
    """Write the whole system into a fresh staging folder beside its target; returns the staging folder."""
    name = safe_child(v2_root, result.blueprint.system.name).name
    v2_root.mkdir(parents=True, exist_ok=True)
    staging = v2_root / _side_name("tmp", name)
    (staging / "components").mkdir(parents=True)
    try:
        (staging / "blueprint.yaml").write_text(dump_yaml(result.blueprint.to_document()), encoding="utf-8")
        (staging / "conversion_report.json").write_text(
            json.dumps(result.report.model_dump(mode="json"), indent=2), encoding="utf-8"
        )
        for comp in result.blueprint.components:
            (staging / "components" / f"{comp.name}.yaml").write_text(
                dump_yaml(component_document(result, comp.name)), encoding="utf-8"
            )
        for name, source in result.code.items():
            shutil.copyfile(source, staging / "components" / f"{name}.py")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def swap_in(staging: Path, target: Path) -> None:
    """Put the staged folder at ``target``: the previous one moves aside, the staged one in, the old goes."""
    old = None
    if target.exists():
        old = target.with_name(_side_name("old", target.name))
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_v2_system(result: ConversionResult, v2_root: Path) -> Path:
    """Write (or replace) ``v2_root/<name>/`` atomically; returns the folder."""
    target = safe_child(v2_root, result.blueprint.system.name)
    staging = stage_v2_system(result, v2_root)
    try:
        swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def finish_swap(v2_root: Path, name: str, staging_name: str) -> bool:
    """Roll a committed conversion forward: swap in ``staging_name`` if it is still there.

    Idempotent: after a crash between the two renames of :func:`swap_in` the
    target is missing and the staging folder is moved in; after a crash before
    them the target (the old files) moves aside first. Returns whether
    ``<name>/blueprint.yaml`` exists afterwards.
    """
    target = safe_child(v2_root, name)
    staging = v2_root / staging_name
    if staging_name.startswith(f".tmp-{name}-") and staging.is_dir():
        swap_in(staging, target)
    return (target / "blueprint.yaml").is_file()


def sweep_leftovers(v2_root: Path, alive: Callable[[int], bool]) -> list[str]:
    """Remove staging (``.tmp-``) and set-aside (``.old-``) folders of processes no longer ``alive``.

    A live process's folders are its work in progress and are left alone.
    Returns the names removed.
    """
    removed = []
    for entry in sorted(v2_root.glob(".*-*-*-*")) if v2_root.is_dir() else []:
        kind, _, rest = entry.name[1:].partition("-")
        pid = rest.rsplit("-", 2)[-2] if rest.count("-") >= 2 else ""
        if kind not in ("tmp", "old") or not pid.isdigit() or alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


def settle_convert(v2_root: Path, detail: dict, alive: Callable[[int], bool]) -> str:
    """After a convert's process died: roll the recorded system's swap forward (:func:`finish_swap`, the
    step the convert takes next), remove unrecorded staging (:func:`sweep_leftovers`); says what is left.

    ``detail`` is the convert operation's progress: ``systems``, ``done`` and
    the ``swap`` of the last recorded system.
    """
    swap = detail.get("swap") or {}
    problem = ""
    if swap.get("system") and not finish_swap(v2_root, swap["system"], swap.get("staging", "")):
        problem = (
            f"; {swap['system']} is recorded as converted but its v2 folder is missing: convert it again"
        )
    sweep_leftovers(v2_root, alive)
    systems, done = list(detail.get("systems", [])), int(detail.get("done", 0))
    left = systems[done:]
    if not left:
        return f"all {len(systems)} systems were converted before it died; nothing to redo{problem}"
    shown = " ".join(left[:5]) + (f" ... ({len(left)} in all)" if len(left) > 5 else "")
    return (
        f"{done} of {len(systems)} converted and recorded; the rest are unchanged: "
        f"run convert again for {shown}{problem}"
    )
