"""Shared field types and the one place that turns files into validated models.

Names of systems and components double as folder names and Python module
names, so they are restricted to plain identifiers: that is what keeps a
blueprint from steering the engine outside its workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, StringConstraints, ValidationError

from engine.errors import BlueprintError, InputError

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
"""A plain identifier: letters, digits, underscore, not starting with a digit, at most 64 chars."""

DOTTED_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$"
DottedRef = Annotated[str, StringConstraints(pattern=DOTTED_PATTERN)]
"""``<component>.<method>`` (v1 calls) or ``<component>.<port>`` (v2 bindings)."""

MAX_BLUEPRINT_BYTES = 2 * 1024 * 1024
"""Blueprints are small; a larger file is almost certainly not a blueprint."""

M = TypeVar("M", bound=BaseModel)


def require_unique_names(items: list[M]) -> list[M]:
    """Validator body shared by both blueprint versions: component names are unique within a system."""
    seen: set[str] = set()
    for item in items:
        name = item.name  # type: ignore[attr-defined]
        if name in seen:
            raise ValueError(f"component names must be unique; '{name}' appears twice")
        seen.add(name)
    return items


def format_location(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``system.components[2].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<document>"


def _expected_from(error: Any) -> str:
    """Turn pydantic's message into the 'expected ...' half of our sentence."""
    kind, msg = error["type"], error["msg"]
    if kind == "missing":
        return "this required field (it is missing)"
    if kind == "extra_forbidden":
        return "no such field (unknown key)"
    if kind == "string_pattern_mismatch":
        if error.get("ctx", {}).get("pattern") == DOTTED_PATTERN:
            return "'<component>.<method or port>', two plain identifiers joined by a dot"
        return "a plain identifier (letters, digits, _; not starting with a digit; at most 64 chars)"
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def read_yaml_document(path: Path) -> Any:
    """Read one YAML document safely, turning every failure into a BlueprintError."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BlueprintError(path, "<file>", "a readable file", exc.strerror or str(exc)) from exc
    if size > MAX_BLUEPRINT_BYTES:
        raise BlueprintError(path, "<file>", f"at most {MAX_BLUEPRINT_BYTES} bytes", f"{size} bytes")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BlueprintError(path, f"byte {exc.start}", "UTF-8 text", f"byte 0x{raw[exc.start]:02x}") from exc
    if not text.strip():
        raise BlueprintError(path, "<document>", "a YAML mapping", "an empty file")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
        raise BlueprintError(path, where, "valid YAML", exc.problem or str(exc)) from exc
    except yaml.YAMLError as exc:
        raise BlueprintError(path, "<document>", "valid YAML", str(exc)) from exc
    except RecursionError as exc:
        raise BlueprintError(path, "<document>", "a document nested less deeply", "too deep") from exc


def validate_document(model: type[M], data: Any, source: str | Path) -> M:
    """Validate parsed data against ``model``; the first problem becomes a BlueprintError."""
    if not isinstance(data, dict):
        raise BlueprintError(source, "<document>", "a YAML mapping at the top level", type(data).__name__)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        got = first.get("input")
        got_text = None if isinstance(got, (dict, list)) else repr(got)[:80]
        expected = _expected_from(first)
        if len(errors) > 1:
            expected += f" (and {len(errors) - 1} more problem(s))"
        raise BlueprintError(source, format_location(first["loc"]), expected, got_text) from exc
    except RecursionError as exc:
        raise BlueprintError(source, "<document>", "a document nested less deeply", "too deep") from exc


def load_model_file(model: type[M], path: str | Path) -> M:
    """Load ``path`` as YAML and validate it as ``model``."""
    path = Path(path)
    return validate_document(model, read_yaml_document(path), path)


def dump_yaml(data: Any) -> str:
    """Stable YAML text: key order kept, block style, so output is byte-identical run to run."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


def load_toml_model(model: type[M], path: str | Path) -> M:
    """Read a TOML settings file (plan, policy) as ``model``; errors name the file and the key."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, "<file>", "a readable UTF-8 TOML file", str(exc)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, "<document>", "valid TOML", str(exc)) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise InputError(path, format_location(err["loc"]), _expected_from(err)) from exc
