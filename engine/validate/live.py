"""The gate's checks that run the system: hosted code imports, and the end-to-end smoke test.

Running a converted system runs the team's own code (hosted components), so
it happens in a sandboxed child (:func:`engine.sandbox.run_isolated`) on a
scratch copy of the v2 folder, never in the engine's process: a module that
exits, hangs or eats memory fails a check with that reason.

The smoke requests are the ones the deploy's smoke test sends
(:func:`engine.parallel.workload.request_mix`, three per endpoint), so a system
that passes the gate does not then fail its deploy on the same requests.
The child streams each check as it is decided (:func:`emit`): if it dies,
the checks before are kept and the one it died in says how and where.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio._backends._asyncio  # noqa: F401 - loaded once by the sandbox worker, not in every child

from engine.models.blueprint_v2 import V2Blueprint
from engine.models.validation import Check
from engine.parallel.workload import request_mix
from engine.runtime.port_system import PortCallError, PortSystem
from engine.runtime.recipes import Hosted
from engine.sandbox import emit, run_isolated

LIVE_TIMEOUT_S = 60.0
LIVE_MEMORY_MB = 512
"""Limits of one sandboxed run of a system (every check that runs it)."""
SMOKE_VARIANTS = 3
"""Smoke requests per endpoint: as many as the deploy's smoke test sends."""


def smoke_requests(endpoints: dict[str, dict[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """What the deploy's smoke test sends, as (endpoint, message) pairs; empty without endpoints."""
    if not endpoints:
        return []
    return [(ep, json.loads(body)) for ep, body in request_mix(endpoints, variants=SMOKE_VARIANTS)]


@contextmanager
def scratch_copy(folder: Path | None) -> Iterator[Path | None]:
    """A throw-away copy of ``folder`` the code may write in (the original is never touched)."""
    if folder is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="switchyard-gate-") as scratch:
        target = Path(scratch) / folder.name
        shutil.copytree(folder, target, symlinks=True)
        yield target


def live_checks(blueprint: V2Blueprint, v2_dir: Path | None) -> list[Check]:
    """Start the v2 system in a sandbox: an ``import`` check per hosted component, ``smoke`` per endpoint."""
    system = PortSystem(blueprint)  # reads the ports only; nothing is imported here
    entry, endpoints = system.entry, system.endpoints()
    if not endpoints:
        return [
            Check(
                name="smoke",
                component=entry,
                target=f"{entry}.*",
                passed=False,
                message=f"the entry component '{entry}' has no endpoints to send requests to",
            )
        ]
    with scratch_copy(v2_dir) as copy_dir:
        result = run_isolated(
            "engine.validate.live:run_v2",
            {
                "blueprint": blueprint.to_document(),
                "v2_dir": str(copy_dir) if copy_dir else None,
                "smoke": smoke_requests(endpoints),
            },
            timeout_s=LIVE_TIMEOUT_S,
            memory_mb=LIVE_MEMORY_MB,
            writable=[copy_dir] if copy_dir else [],
            cwd=copy_dir,
        )
    checks = [
        Check.model_validate(r["check"]) for r in result.emitted if isinstance(r, dict) and "check" in r
    ]
    if not result.ok:
        step = next((r for r in reversed(result.emitted) if isinstance(r, dict) and "step" in r), {})
        checks.append(
            Check(
                name=step.get("for_check", "smoke"),
                component=step.get("component", entry),
                target=step.get("target", f"{entry}.*"),
                passed=False,
                message=f"the code {result.failure} while {step.get('step', 'starting the system')}",
            )
        )
    return checks


# --------------------------------------------------------------------------- in the sandbox


def run_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: start the system (hosted code imports), then send the smoke requests."""
    blueprint = V2Blueprint.model_validate(payload["blueprint"])
    code_dir = Path(payload["v2_dir"]) / "components" if payload.get("v2_dir") else None

    def starting(name: str) -> None:
        if isinstance(system.recipes[name], Hosted):
            module = system.recipes[name].config.module  # type: ignore[attr-defined]
            emit(_step(f"importing components/{module}", "import", name, f"components/{module}"))

    system = PortSystem(blueprint, code_dir, before_start=starting)
    smoke = [(str(ep), dict(msg)) for ep, msg in payload["smoke"]]
    anyio.run(_smoke, system, smoke)
    return {"done": True}


def _step(text: str, check: str, component: str, target: str) -> dict[str, Any]:
    return {"step": text, "for_check": check, "component": component, "target": target}


async def _smoke(system: PortSystem, smoke: list[tuple[str, dict[str, Any]]]) -> None:
    async with system.running():
        errors = system.load_errors()
        for name, recipe in system.recipes.items():
            if isinstance(recipe, Hosted):
                target = f"components/{recipe.config.module}"  # type: ignore[attr-defined]
                failed = errors.get(name)
                message = f"does not import: {failed} (the v1 code's own defect)" if failed else "imports"
                emit({"check": _check("import", name, target, failed is None, message)})
        entry = system.entry
        by_endpoint: dict[str, list[dict[str, Any]]] = {}
        for endpoint, message in smoke:
            by_endpoint.setdefault(endpoint, []).append(message)
        for endpoint, messages in sorted(by_endpoint.items()):
            target = f"{entry}.{endpoint}"
            failure, fields = None, set()
            for message in messages:
                emit(_step(f"sending {target} {json.dumps(message)[:200]}", "smoke", entry, target))
                try:
                    fields |= set(await system.handle(endpoint, message))
                except PortCallError as exc:
                    failure = f"{json.dumps(message)[:200]} -> {exc}"
                    break
            text = failure or f"answered {len(messages)} requests with fields {sorted(fields)}"
            emit({"check": _check("smoke", entry, target, failure is None, text)})


def _check(name: str, component: str, target: str, passed: bool, message: str) -> dict[str, Any]:
    return Check(name=name, component=component, target=target, passed=passed, message=message).model_dump()
