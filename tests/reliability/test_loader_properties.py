"""Property-based: random documents and random bytes never crash the blueprint loaders or the converter.

Whatever a file holds, ``load_v1_blueprint`` / ``load_v2_blueprint`` return a
valid model or raise :class:`engine.errors.InputError` (BlueprintError is one)
naming the file; and whatever v1 blueprint loads, the converter returns a v2
blueprint that itself survives being written and loaded again. Derandomised,
so a run is repeatable; about 200 examples per property.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.convert.converter import EXTRA_TYPE_TO_RECIPE, SEED_TYPE_TO_RECIPE, convert_blueprint
from engine.errors import InputError
from engine.models.blueprint_v1 import V1Blueprint, load_v1_blueprint
from engine.models.blueprint_v2 import V2Blueprint, load_v2_blueprint
from engine.models.common import dump_yaml

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(),
)
keys = st.one_of(
    st.text(max_size=12), st.sampled_from(["system", "name", "components", "type", "from", "to"])
)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=30,
)
"""Any YAML-able tree: dicts, lists and scalars, nested."""

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
types = st.one_of(
    st.sampled_from(
        ["Controller", "Controller", "APIGateway", "Processor"]
    ),  # calls, and so cycles, come from these
    st.sampled_from(sorted(SEED_TYPE_TO_RECIPE) + sorted(EXTRA_TYPE_TO_RECIPE)),
    identifiers,
)
methods = st.sampled_from(["process", "get", "insert", "x"])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*prefix, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, document: dict[str, Any]) -> Any:
    """``document`` with none, one or a few places broken: a value replaced, a key dropped or added."""
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        paths = _paths(document)
        where = paths[draw(st.integers(min_value=0, max_value=len(paths) - 1))]
        if not where:
            return draw(trees)
        parent = document
        for part in where[:-1]:
            parent = parent[part]
        kind = draw(st.sampled_from(["replace", "drop", "add"]))
        if kind == "replace":
            parent[where[-1]] = draw(trees)
        elif kind == "drop" and isinstance(parent, dict):
            del parent[where[-1]]
        elif kind == "drop":
            parent.pop(where[-1])
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(trees)
    return document


@st.composite
def v1_documents(draw: st.DrawFn) -> Any:
    """Valid v1 documents (calls between their components, cycles included), then a few places broken."""
    names = draw(st.lists(identifiers, min_size=1, max_size=5, unique=True))
    refs = st.builds("{}.{}".format, st.sampled_from([*names, "ghost"]), methods)
    configs = st.one_of(
        st.fixed_dictionaries({"routes": st.dictionaries(identifiers, refs, min_size=1, max_size=3)}),
        st.fixed_dictionaries(
            {"actions": st.dictionaries(methods, st.fixed_dictionaries({"call": refs}), max_size=3)}
        ),
        st.dictionaries(identifiers, trees, max_size=3),
    )
    components = [
        {
            "name": n,
            "type": draw(types),
            "configuration": draw(configs),
            "calls": draw(st.lists(refs, max_size=3)),
        }
        for n in names
    ]
    document = {
        "system": {"name": "prop_system", "description": "d", "version": "1.0.0", "components": components}
    }
    return draw(mutated(document))


@st.composite
def v2_documents(draw: st.DrawFn) -> Any:
    """Valid-looking v2 documents with random bindings (dangling, duplicated, cyclic ones among them)."""
    names = draw(st.lists(identifiers, min_size=1, max_size=5, unique=True))
    ports = st.builds("{}.{}".format, st.sampled_from([*names, *names, "ghost"]), st.sampled_from(["a", "b"]))
    recipes = st.sampled_from(["Store", "APIEndpoint", "Controller", "Transformer", "Teleporter"])
    document = {
        "schema_version": "2.0.0",
        "system": {"name": "prop_system", "description": "d", "version": "1"},
        "components": [
            {
                "name": n,
                "recipe": draw(recipes),
                "config": draw(st.dictionaries(identifiers, trees, max_size=2)),
            }
            for n in names
        ],
        "bindings": draw(st.lists(st.builds(lambda a, b: {"from": a, "to": b}, ports, ports), max_size=5)),
    }
    return draw(mutated(document))


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


def load_or_input_error(loader: Any, path: Path) -> Any:
    """The loaded model, or None when the loader said why the file is bad (naming the file)."""
    try:
        return loader(path)
    except InputError as exc:
        assert str(path) in str(exc) and exc.location
        return None


def write_yaml(path: Path, document: Any) -> Path:
    try:
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError):  # pragma: no cover - everything the strategies make is dumpable
        pytest.skip("not dumpable")
    path.write_text(text, encoding="utf-8")
    return path


def assert_converts_to_a_loadable_v2(v1: V1Blueprint, folder: Path) -> None:
    """The converter's output is a valid v2 blueprint, and stays one once written and read back."""
    result = convert_blueprint(v1, None)
    assert isinstance(result.blueprint, V2Blueprint)
    out = folder / "converted.yaml"
    out.write_text(dump_yaml(result.blueprint.to_document()), encoding="utf-8")
    assert load_v2_blueprint(out).to_document() == result.blueprint.to_document()


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(document=trees)
def test_any_tree_through_either_loader_is_a_model_or_an_input_error(document: Any, scratch: Path) -> None:
    path = write_yaml(scratch / "tree.yaml", document)
    load_or_input_error(load_v1_blueprint, path)
    load_or_input_error(load_v2_blueprint, path)


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_any_bytes_through_either_loader_are_a_model_or_an_input_error(data: bytes, scratch: Path) -> None:
    path = scratch / "bytes.yaml"
    path.write_bytes(data)
    load_or_input_error(load_v1_blueprint, path)
    load_or_input_error(load_v2_blueprint, path)


@SETTINGS
@given(text=st.text(alphabet=string.printable + "{}[]:-&*!|>'\"%@`#,?\x00\x1b\u00e9\ufeff", max_size=300))
def test_any_yaml_looking_text_is_a_model_or_an_input_error(text: str, scratch: Path) -> None:
    path = scratch / "text.yaml"
    path.write_text(text, encoding="utf-8")
    load_or_input_error(load_v1_blueprint, path)
    load_or_input_error(load_v2_blueprint, path)


@SETTINGS
@given(document=v1_documents())
def test_a_v1_shaped_document_loads_or_says_why_and_what_loads_converts(document: Any, scratch: Path) -> None:
    v1 = load_or_input_error(load_v1_blueprint, write_yaml(scratch / "v1.yaml", document))
    if v1 is not None:
        assert_converts_to_a_loadable_v2(v1, scratch)


@SETTINGS
@given(document=v2_documents())
def test_a_v2_shaped_document_loads_or_says_why(document: Any, scratch: Path) -> None:
    v2 = load_or_input_error(load_v2_blueprint, write_yaml(scratch / "v2.yaml", document))
    if v2 is not None:  # what loads is whole: bindings join components of the system, no cycle
        names = {c.name for c in v2.components}
        assert all(b.source.split(".")[0] in names and b.target.split(".")[0] in names for b in v2.bindings)


def test_the_v1_strategy_reaches_both_outcomes(scratch: Path) -> None:
    """A guard on the strategy itself: some documents load (and convert), some do not."""
    outcomes: set[bool] = set()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(document=v1_documents())
    def probe(document: Any) -> None:
        outcomes.add(
            load_or_input_error(load_v1_blueprint, write_yaml(scratch / "probe.yaml", document)) is None
        )

    probe()
    assert outcomes == {True, False}
