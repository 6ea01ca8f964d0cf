"""The v1 validator: does this RPC system load, wire up and answer a request?

Checks, in the order a failing system would break:

``import`` (per component)
    The module loads in isolation and provides ``Component`` (``METHODS`` and
    ``SENDS`` are optional: see the contract in :mod:`engine.runtime.legacy`).
    A failing import is a failed check, never a crash.
``call_target`` (per blueprint call)
    The called component exists, and so does the method, when the callee loaded.
``message_shape`` (per blueprint call)
    What the caller declares it sends (``SENDS``) carries every field, with
    the right type, that the callee's method accepts. A module without a
    ``SENDS`` table, or a callee that declares no shape, leaves the check to
    the callee at run time (passed, and says so).
``smoke`` (per entry endpoint)
    One request built from the endpoint's declared shape goes through the
    whole system on the legacy runtime and comes back as a mapping.

The smoke request runs in a worker thread with a time limit, so a component
that hangs fails its check instead of stalling the validator.

The modules are code we did not write, so all of this runs in a sandboxed
child (:mod:`engine.sandbox`) on a scratch copy of the system folder: with a
time and a memory limit, writes only in that copy. The child says which step
it starts (``import:<component>``, ``start:<component>``,
``smoke:<endpoint>``); if it dies in one (a module calling ``os._exit``,
looping forever, allocating without bound, writing elsewhere), that step
fails with the child's reason and the checks run again without it, so every
other check still gets its answer, exactly as for a module that raises.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.judge.policy import SandboxPolicy
from engine.models.blueprint_v1 import V1Blueprint, load_v1_blueprint
from engine.models.validation import Check, FleetValidation, SystemValidation
from engine.progress import Progress, no_progress
from engine.runtime.legacy import (
    LegacySystem,
    RpcError,
    accepts_of,
    declared_methods,
    declared_sends,
    example_message,
    load_component_module,
)
from engine.sandbox import emit, run_isolated
from engine.sandbox.child import describe, where

SMOKE_TIMEOUT_S = 5.0

PARALLEL = max(1, min(2, os.cpu_count() or 1))
"""Systems validated at once: their children run on separate cores (this machine's budget is two)."""

IGNORED_IN_COPY = shutil.ignore_patterns(".git", "__pycache__", "*.pyc")
"""Not copied into the scratch folder the checks run on: they are never part of a system's behaviour."""


def validate_v1_system(system_dir: Path, limits: SandboxPolicy | None = None) -> SystemValidation:
    """Run every v1 check on the system in ``system_dir`` (BlueprintError if its blueprint won't load).

    The blueprint is read here (it is data); the modules are only ever run in
    the sandbox, see the module doc.
    """
    limits = limits or SandboxPolicy()
    blueprint = load_v1_blueprint(system_dir / "blueprint.yaml")
    known: dict[str, str] = {}
    with scratch_copy(system_dir) as copy:
        payload = {
            "system_dir": str(copy),
            "blueprint": blueprint.model_dump(mode="json"),
            "known": known,
            "smoke_timeout_s": SMOKE_TIMEOUT_S,
        }
        for _ in range(len(blueprint.system.components) * 2 + 4):
            result = run_isolated(
                "engine.validate.v1:checks_in_child",
                payload,
                timeout_s=limits.timeout_s,
                memory_mb=limits.memory_mb,
                writable=[copy],
                cwd=copy,
            )
            if result.ok:
                checks = [Check.model_validate(c) for c in result.value]
                break
            step = _step_in_progress(result.emitted)
            if step is None or step in known:
                checks = _checks_so_far(result.emitted, result.failure or "ended without a result")
                break
            known[step] = result.failure or "ended without a result"
        else:
            checks = _checks_so_far(result.emitted, "gave up after ending in every step it ran")
    return SystemValidation(system=blueprint.system.name, blueprint_version="v1", checks=checks)


@contextlib.contextmanager
def scratch_copy(system_dir: Path) -> Iterator[Path]:
    """A throw-away copy of a system folder: its code runs there, so the team's folder is never written."""
    with tempfile.TemporaryDirectory(prefix="switchyard-v1-") as scratch:
        copy = Path(scratch) / system_dir.name
        shutil.copytree(system_dir, copy, symlinks=True, ignore=IGNORED_IN_COPY)
        yield copy


def entry_endpoints(system_dir: Path, limits: SandboxPolicy | None = None) -> dict[str, dict[str, str]]:
    """The v1 system's entry methods and the message shape each accepts, read by loading it in the sandbox.

    Raises RpcError(``not_loaded``) with the reason when it does not load there.
    """
    limits = limits or SandboxPolicy()
    blueprint = load_v1_blueprint(system_dir / "blueprint.yaml")
    with scratch_copy(system_dir) as copy:
        result = run_isolated(
            "engine.validate.v1:endpoints_in_child",
            {"system_dir": str(copy), "blueprint": blueprint.model_dump(mode="json")},
            timeout_s=limits.timeout_s,
            memory_mb=limits.memory_mb,
            writable=[copy],
            cwd=copy,
        )
    if not result.ok:
        raise RpcError("not_loaded", blueprint.system.name, result.failure or "ended without a result")
    endpoints: dict[str, dict[str, str]] = result.value
    return endpoints


def endpoints_in_child(payload: dict[str, Any]) -> dict[str, dict[str, str]]:
    """In the sandbox: load the system and list its entry endpoints."""
    blueprint = V1Blueprint.model_validate(payload["blueprint"])
    system = LegacySystem.load(Path(payload["system_dir"]), blueprint)
    if system.entry in system.load_errors:
        raise RpcError("not_loaded", system.entry, system.load_errors[system.entry])
    return system.endpoints()


def validate_v1_systems(
    folders: list[Path], limits: SandboxPolicy | None = None, progress: Progress = no_progress
) -> list[SystemValidation]:
    """Validate each system folder, :data:`PARALLEL` at a time (each in its own child); results in order.

    A system's work is mostly its child's, so two run side by side on two
    cores. ``progress`` is called from this thread as systems finish.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="v1") as pool:
        futures = {pool.submit(validate_v1_system, folder, limits): folder for folder in folders}
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            progress(done, len(folders), f"validated {futures[future].name}")
        return [f.result() for f in futures]


def validate_v1_fleet(
    fleet_dir: Path, names: list[str] | None = None, limits: SandboxPolicy | None = None
) -> FleetValidation:
    """Validate ``names`` (every system folder if None) under ``fleet_dir``."""
    if names is None:
        names = sorted(p.name for p in fleet_dir.iterdir() if (p / "blueprint.yaml").is_file())
    return FleetValidation(
        blueprint_version="v1", systems=validate_v1_systems([fleet_dir / n for n in names], limits)
    )


def _step_in_progress(emitted: list[Any]) -> str | None:
    """The step the child had started and not finished when it ended (None: it died between steps)."""
    started = None
    for record in emitted:
        if isinstance(record, dict) and "step" in record:
            started = record["step"]
        elif isinstance(record, dict) and record.get("done") == started:
            started = None
    return started


def _checks_so_far(emitted: list[Any], failure: str) -> list[Check]:
    """The checks the child finished, and one failed check saying how it ended."""
    done = [Check.model_validate(r["check"]) for r in emitted if isinstance(r, dict) and "check" in r]
    return [*done, Check(name="isolation", passed=False, message=f"the checks' process ended: {failure}")]


# --------------------------------------------------------------------------- in the sandboxed child


def checks_in_child(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every check, run in the sandbox: steps in ``payload['known']`` fail with their reason unrun."""
    system_dir = Path(payload["system_dir"])
    known: dict[str, str] = payload.get("known", {})
    blueprint = V1Blueprint.model_validate(payload["blueprint"])  # read and checked by the caller
    modules: dict[str, ModuleType] = {}
    checks = _import_checks(system_dir, blueprint, modules, known)
    failed_imports = {c.component: c.message for c in checks if not c.passed and c.component}
    checks += _call_checks(blueprint, modules)
    smoke_timeout_s = float(payload.get("smoke_timeout_s", SMOKE_TIMEOUT_S))
    checks += _smoke_checks(system_dir, blueprint, known, modules, failed_imports, smoke_timeout_s)
    return [c.model_dump() for c in checks]


class _Step:
    """``with _Step(key):`` tells the caller (through the sandbox) that ``key`` runs the system's code now."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __enter__(self) -> None:
        emit({"step": self.key})

    def __exit__(self, *exc: object) -> None:
        emit({"done": self.key})


def _import_checks(
    system_dir: Path, blueprint: V1Blueprint, modules: dict[str, ModuleType], known: dict[str, str]
) -> list[Check]:
    checks = []
    for comp in blueprint.system.components:
        path = system_dir / "components" / f"{comp.name}.py"
        target = f"components/{comp.name}.py"
        if f"import:{comp.name}" in known:
            checks.append(
                Check(
                    name="import",
                    component=comp.name,
                    target=target,
                    passed=False,
                    message=known[f"import:{comp.name}"],
                )
            )
            continue
        if not path.is_file():
            checks.append(
                Check(
                    name="import",
                    component=comp.name,
                    target=target,
                    passed=False,
                    message=f"{target} does not exist",
                )
            )
            continue
        try:
            with _Step(f"import:{comp.name}"):
                module = load_component_module(path)
        except Exception as exc:  # noqa: BLE001 - any import failure is the finding
            checks.append(
                Check(
                    name="import",
                    component=comp.name,
                    target=target,
                    passed=False,
                    message=describe_failure(exc),
                )
            )
            continue
        missing = [attr for attr in ("Component",) if not hasattr(module, attr)]
        if missing:
            checks.append(
                Check(
                    name="import",
                    component=comp.name,
                    target=target,
                    passed=False,
                    message=f"module does not define {', '.join(missing)}",
                )
            )
            continue
        modules[comp.name] = module
        checks.append(
            Check(
                name="import",
                component=comp.name,
                target=target,
                passed=True,
                message=f"loaded; methods: {', '.join(sorted(declared_methods(module))) or 'none'}",
            )
        )
    return checks


def describe_failure(exc: BaseException) -> str:
    """An import failure in one line, with the module's file and line; running out of memory is said as
    the limit it met."""
    if isinstance(exc, MemoryError):
        return describe(exc)
    location = where(exc)
    return f"{type(exc).__name__}: {exc}" + (f" ({location})" if location else "")


def _call_checks(blueprint: V1Blueprint, modules: dict[str, ModuleType]) -> list[Check]:
    checks = []
    for comp in blueprint.system.components:
        module = modules.get(comp.name)
        sends = None if module is None else declared_sends(module) if hasattr(module, "SENDS") else {}
        for ref in comp.calls:
            callee_name, _, method = ref.partition(".")
            callee = blueprint.component(callee_name)
            accepts: dict[str, str] | None = None
            if callee is None:
                target_ok, msg = False, f"calls '{ref}' but the system has no component '{callee_name}'"
            elif callee_name not in modules:
                target_ok, msg = False, f"calls '{ref}' but '{callee_name}' failed to load"
            else:
                methods = declared_methods(modules[callee_name])
                if method not in methods:
                    known = ", ".join(sorted(methods)) or "none"
                    target_ok, msg = (
                        False,
                        f"calls '{ref}' but '{callee_name}' has no method '{method}' ({known})",
                    )
                else:
                    target_ok, msg = True, f"'{ref}' exists"
                    accepts = accepts_of(methods[method])
            checks.append(
                Check(name="call_target", component=comp.name, target=ref, passed=target_ok, message=msg)
            )
            checks.append(_shape_check(comp.name, ref, sends, accepts, target_ok))
    return checks


def _shape_check(
    caller: str, ref: str, sends: dict | None, accepts: dict[str, str] | None, target_ok: bool
) -> Check:
    """``sends == {}``: the caller has no ``SENDS`` table; ``accepts`` None: the callee declares no shape."""

    def result(passed: bool, message: str) -> Check:
        return Check(name="message_shape", component=caller, target=ref, passed=passed, message=message)

    if sends is None:
        return result(False, f"cannot check: '{caller}' failed to load")
    if not target_ok:
        return result(False, f"cannot check: '{ref}' is not a valid target")
    if accepts is None:
        return result(True, f"'{ref}' declares no message shape; any message is accepted")
    if not sends:
        return result(True, f"'{caller}' declares no SENDS table; '{ref}' checks the message when called")
    sent = sends.get(ref)
    if sent is None:
        return result(False, f"'{caller}' calls '{ref}' but declares no message shape for it in SENDS")
    problems = []
    for fld, type_name in accepts.items():
        if fld not in sent:
            problems.append(f"'{fld}' ({type_name}) is required but not sent")
        elif "any" not in (sent[fld], type_name) and sent[fld] != type_name:
            problems.append(f"'{fld}' is sent as {sent[fld]} but {type_name} is accepted")
    if problems:
        return result(False, "; ".join(problems))
    return result(True, f"sends {sorted(sent)}; accepts {sorted(accepts)}")


def _smoke_checks(
    system_dir: Path,
    blueprint: V1Blueprint,
    known: dict[str, str],
    modules: dict[str, ModuleType],
    failed_imports: dict[str, str],
    timeout_s: float,
) -> list[Check]:
    skip = dict(failed_imports)  # a module that did not import is not imported again
    skip.update(
        (comp.name, known[f"start:{comp.name}"])
        for comp in blueprint.system.components
        if f"start:{comp.name}" in known
    )
    loading: list[str] = []

    def before(name: str) -> None:
        emit({"step": f"start:{name}"})
        loading.append(name)

    system = LegacySystem.load(system_dir, blueprint, skip=skip, before=before, modules=modules)
    if loading:
        emit({"done": f"start:{loading[-1]}"})
    entry = system.entry
    if entry in system.load_errors:
        return [
            Check(
                name="smoke",
                component=entry,
                target=f"{entry}.*",
                passed=False,
                message=f"entry component failed to load: {system.load_errors[entry]}",
            )
        ]
    endpoints = system.endpoints()
    if not endpoints:
        return [
            Check(
                name="smoke",
                component=entry,
                target=f"{entry}.*",
                passed=False,
                message="the entry component declares no methods to call",
            )
        ]
    checks = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="smoke")
    try:
        for endpoint, shape in sorted(endpoints.items()):
            target = f"{entry}.{endpoint}"
            if f"smoke:{endpoint}" in known:
                checks.append(
                    Check(
                        name="smoke",
                        component=entry,
                        target=target,
                        passed=False,
                        message=known[f"smoke:{endpoint}"],
                    )
                )
                continue
            try:
                with _Step(f"smoke:{endpoint}"):  # before the request starts: it may end the process
                    future = pool.submit(system.handle, endpoint, example_message(shape))
                    response = future.result(timeout=timeout_s)
            except concurrent.futures.TimeoutError:
                checks.append(
                    Check(
                        name="smoke",
                        component=entry,
                        target=target,
                        passed=False,
                        message=f"no answer within {timeout_s:g} s",
                    )
                )
                break  # the worker is stuck; later endpoints would queue behind it
            except RpcError as exc:
                checks.append(
                    Check(name="smoke", component=entry, target=target, passed=False, message=str(exc))
                )
            except Exception as exc:  # noqa: BLE001
                checks.append(
                    Check(
                        name="smoke",
                        component=entry,
                        target=target,
                        passed=False,
                        message=f"{type(exc).__name__}: {exc}",
                    )
                )
            else:
                checks.append(
                    Check(
                        name="smoke",
                        component=entry,
                        target=target,
                        passed=True,
                        message=f"answered with fields {sorted(response)}",
                    )
                )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return checks
