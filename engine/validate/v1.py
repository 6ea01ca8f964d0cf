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
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from types import ModuleType

from engine.models.blueprint_v1 import V1Blueprint, load_v1_blueprint
from engine.models.validation import Check, FleetValidation, SystemValidation
from engine.runtime.legacy import (
    LegacySystem,
    RpcError,
    accepts_of,
    declared_methods,
    declared_sends,
    example_message,
    load_component_module,
)

SMOKE_TIMEOUT_S = 5.0


def validate_v1_system(system_dir: Path) -> SystemValidation:
    """Run every v1 check on the system in ``system_dir`` (BlueprintError if its blueprint won't load)."""
    blueprint = load_v1_blueprint(system_dir / "blueprint.yaml")
    modules: dict[str, ModuleType] = {}
    checks = [*_import_checks(system_dir, blueprint, modules)]
    checks += _call_checks(blueprint, modules)
    checks += _smoke_checks(system_dir, blueprint)
    return SystemValidation(system=blueprint.system.name, blueprint_version="v1", checks=checks)


def validate_v1_fleet(fleet_dir: Path, names: list[str] | None = None) -> FleetValidation:
    """Validate ``names`` (every system folder if None) under ``fleet_dir``."""
    if names is None:
        names = sorted(p.name for p in fleet_dir.iterdir() if (p / "blueprint.yaml").is_file())
    return FleetValidation(blueprint_version="v1", systems=[validate_v1_system(fleet_dir / n) for n in names])


def _import_checks(system_dir: Path, blueprint: V1Blueprint, modules: dict[str, ModuleType]) -> list[Check]:
    checks = []
    for comp in blueprint.system.components:
        path = system_dir / "components" / f"{comp.name}.py"
        target = f"components/{comp.name}.py"
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
            module = load_component_module(path)
        except Exception as exc:  # noqa: BLE001 - any import failure is the finding
            checks.append(
                Check(
                    name="import",
                    component=comp.name,
                    target=target,
                    passed=False,
                    message=f"{type(exc).__name__}: {exc}",
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


def _smoke_checks(system_dir: Path, blueprint: V1Blueprint) -> list[Check]:
    system = LegacySystem.load(system_dir, blueprint)
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
            future = pool.submit(system.handle, endpoint, example_message(shape))
            try:
                response = future.result(timeout=SMOKE_TIMEOUT_S)
            except concurrent.futures.TimeoutError:
                checks.append(
                    Check(
                        name="smoke",
                        component=entry,
                        target=target,
                        passed=False,
                        message=f"no answer within {SMOKE_TIMEOUT_S:.0f} s",
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
