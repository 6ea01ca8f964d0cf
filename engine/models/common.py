"""Shared field types and the one place that turns files into validated models.

Names of systems and components double as folder names and Python module
names, so they are restricted to plain identifiers: that is what keeps a
blueprint from steering the engine outside its workspace.
"""

from __future__ import annotations

import datetime as dt
import re
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


class LocatedError(ValueError):
    """A validator's complaint about a place below the field it checks: ``where`` is appended to its path."""

    def __init__(self, where: tuple[str | int, ...], message: str):
        self.where = where
        super().__init__(message)


def require_unique_names(items: list[M]) -> list[M]:
    """Validator body shared by both blueprint versions: component names are unique within a system."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.name  # type: ignore[attr-defined]
        if name in seen:
            raise LocatedError((i, "name"), f"component names must be unique; '{name}' appears twice")
        seen.add(name)
    return items


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in a directed graph as ``[a, b, ..., a]``, or None (iterative: a long chain cannot recurse)."""
    done: set[str] = set()
    for root in sorted(edges):
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(sorted(edges.get(root, ())))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


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
        pattern = error.get("ctx", {}).get("pattern")
        if pattern == DOTTED_PATTERN:
            return "'<component>.<method or port>', two plain identifiers joined by a dot"
        if pattern == IDENTIFIER_PATTERN:
            return "a plain identifier (letters, digits, _; not starting with a digit; at most 64 chars)"
        return f"text matching {pattern}"
    if kind == "too_short":
        return f"at least {error.get('ctx', {}).get('min_length', 1)} item(s)"
    for prefix in ("Input should be ", "Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


MAX_NESTING = 64
"""Blueprints nest a few levels; deeper is a mistake or an attack, and would crash recursive code."""

MAX_VALUES = 100_000
"""Values in one document, an alias counted each time it is used ('billion laughs' files are small)."""

PLAIN_VALUES = (dict, list, str, int, float, bool, type(None), dt.date)
"""What a blueprint may hold: JSON's values and dates (no !!binary, !!set, !!omap)."""


class _DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice (PyYAML would silently keep the last one)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and turns a constructor's crash into a marked error."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            # e.g. created: 2025-13-45 or !!int 'x': the resolver's guess cannot be built
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {node.tag.rsplit(':', 1)[-1]} value: {exc}", node.start_mark
            ) from exc


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # unhashable: the base constructor reports it with its mark
        if duplicate:
            raise _DuplicateKeyError(
                "while constructing a mapping",
                node.start_mark,
                f"found key {key!r} twice",
                key_node.start_mark,
            )
    yield from loader.construct_yaml_map(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_of(text: str, index: int) -> str:
    """``line L, column C`` of a character index (both 1-based)."""
    line = text.count("\n", 0, index) + 1
    return f"line {line}, column {index - text.rfind(chr(10), 0, index)}"


def _undecodable(raw: bytes, exc: UnicodeDecodeError) -> tuple[str, str]:
    """(location, got) of the first byte that is not UTF-8."""
    line = raw.count(b"\n", 0, exc.start) + 1
    return f"line {line} (byte {exc.start})", f"byte 0x{raw[exc.start]:02x}, not UTF-8"


def read_file_bytes(path: Path, limit: int, error: type[InputError] = InputError) -> bytes:
    """A regular file's bytes, at most ``limit`` of them; every failure is an ``error`` naming the file."""
    try:
        if not path.is_file():
            got = (
                "a folder"
                if path.is_dir()
                else ("no such file" if not path.exists() else "not a regular file")
            )
            raise error(path, "<file>", "a readable file", got)
        size = path.stat().st_size
        if size > limit:
            raise error(path, "<file>", f"at most {limit} bytes", f"{size} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise error(path, "<file>", "a readable file", exc.strerror or str(exc)) from exc


def _check_plain(data: Any, path: Path) -> None:
    """Refuse documents too deep, too large once aliases are expanded, or holding non-JSON values."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    count = 0
    while stack:
        value, where = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise BlueprintError(
                path, "<document>", f"at most {MAX_VALUES} values (an alias counts each time it is used)"
            )
        if len(where) > MAX_NESTING:
            raise BlueprintError(
                path, format_location(where[:6]) + "...", f"nesting at most {MAX_NESTING} levels deep"
            )
        if not isinstance(value, PLAIN_VALUES):
            raise BlueprintError(
                path,
                format_location(where),
                "a plain value (text, number, list, mapping)",
                type(value).__name__,
            )
        if isinstance(value, dict):
            stack.extend((v, (*where, k)) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(value))


def read_yaml_document(path: Path) -> Any:
    """Read one YAML document safely, turning every failure into a BlueprintError."""
    raw = read_file_bytes(path, MAX_BLUEPRINT_BYTES, BlueprintError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where, got = _undecodable(raw, exc)
        raise BlueprintError(path, where, "UTF-8 text", got) from exc
    if not text.strip():
        raise BlueprintError(path, "<document>", "a YAML mapping", "an empty file")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKeyError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
        raise BlueprintError(path, where, "each key at most once in a mapping", exc.problem) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<document>"
        raise BlueprintError(path, where, "valid YAML", exc.problem or str(exc)) from exc
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise BlueprintError(
            path, _line_of(text, exc.position), "printable characters", f"control character U+{code:04X}"
        ) from exc
    except yaml.YAMLError as exc:
        raise BlueprintError(path, "<document>", "valid YAML", str(exc).splitlines()[0]) from exc
    except RecursionError as exc:
        raise BlueprintError(
            path, "<document>", f"nesting at most {MAX_NESTING} levels deep", "deeper"
        ) from exc
    if data is None:
        raise BlueprintError(path, "<document>", "a YAML mapping", "only comments")
    _check_plain(data, path)
    return data


def _invalid(exc: ValidationError, source: str | Path, error: type[InputError]) -> InputError:
    """The first problem pydantic found, as an ``error`` naming the field path (and what it got)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"]) + tuple(getattr(first.get("ctx", {}).get("error"), "where", ()))
    got = first.get("input")
    got_text = None if isinstance(got, (dict, list)) else repr(got)[:80]
    expected = _expected_from(first)
    if len(errors) > 1:
        expected += f" (and {len(errors) - 1} more problem(s))"
    return error(source, format_location(loc), expected, got_text)


def validate_document(model: type[M], data: Any, source: str | Path) -> M:
    """Validate parsed data against ``model``; the first problem becomes a BlueprintError."""
    if not isinstance(data, dict):
        raise BlueprintError(source, "<document>", "a YAML mapping at the top level", type(data).__name__)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, source, BlueprintError) from exc
    except RecursionError as exc:
        raise BlueprintError(source, "<document>", "a document nested less deeply", "too deep") from exc


def load_model_file(model: type[M], path: str | Path) -> M:
    """Load ``path`` as YAML and validate it as ``model``."""
    path = Path(path)
    return validate_document(model, read_yaml_document(path), path)


def dump_yaml(data: Any) -> str:
    """Stable YAML text: key order kept, block style, so output is byte-identical run to run."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


MAX_SETTINGS_BYTES = 1024 * 1024
"""Plan, policy and roles files are a few kilobytes."""

_TOML_PLACE = re.compile(r"\s*\(at (line \d+, column \d+|end of document)\)\s*$")


def load_toml_model(model: type[M], path: str | Path) -> M:
    """Read a TOML settings file (plan, policy, roles) as ``model``; errors name the file and key or line."""
    import tomllib

    path = Path(path)
    raw = read_file_bytes(path, MAX_SETTINGS_BYTES)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        where, got = _undecodable(raw, exc)
        raise InputError(path, where, "UTF-8 text", got) from exc
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        place = _TOML_PLACE.search(message)
        where = place.group(1) if place else "<document>"
        raise InputError(path, where, "valid TOML", _TOML_PLACE.sub("", message)) from exc
    except RecursionError as exc:
        raise InputError(path, "<document>", "arrays and tables nested less deeply", "too deep") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, path, InputError) from exc
