"""Writing a converted system to ``generated_systems_v2/<name>/`` in the workspace.

The folder holds ``blueprint.yaml`` (the v2 blueprint), ``conversion_report.json``
and ``components/<component>.yaml``: each generated component with its recipe,
config and resolved ports. Files are written to a temporary folder and
swapped in, so a crash never leaves half a system; the v1 folder is never
touched.
"""

from __future__ import annotations

import json
import shutil
import uuid
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


def write_v2_system(result: ConversionResult, v2_root: Path) -> Path:
    """Write (or replace) ``v2_root/<name>/`` atomically; returns the folder."""
    target = safe_child(v2_root, result.blueprint.system.name)
    v2_root.mkdir(parents=True, exist_ok=True)
    staging = v2_root / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
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
        old = None
        if target.exists():
            old = v2_root / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
