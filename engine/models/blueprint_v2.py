"""The v2 (port-based) blueprint: recipe components wired by port bindings.

::

    schema_version: "2.0.0"
    system: {name: todo_api_system, description: ..., version: 1.0.0}
    components:
      - {name: gateway, recipe: APIEndpoint, config: {...}}
    bindings:
      - {from: gateway.out, to: controller.in}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from engine.models.common import (
    DottedRef,
    Identifier,
    LocatedError,
    find_cycle,
    load_model_file,
    require_unique_names,
)

SCHEMA_VERSION = "2.0.0"


class V2System(BaseModel):
    """The ``system`` section of a v2 blueprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier
    description: str
    version: str = Field(min_length=1, max_length=64)


class V2Component(BaseModel):
    """A component built from a recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier
    recipe: Identifier = Field(description="Recipe name, e.g. Store, APIEndpoint, Transformer, Hosted.")
    config: Any = Field(
        default_factory=dict,
        description="The recipe's settings: the v1 ``configuration`` as is (the seed's ``config``); a "
        "recipe that cannot use it fails the gate's config check, never the load.",
    )


class V2Binding(BaseModel):
    """A wire from an output port to an input port."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: DottedRef = Field(alias="from", description="``<component>.<output port>``")
    target: DottedRef = Field(alias="to", description="``<component>.<input port>``")


class V2Blueprint(BaseModel):
    """A whole v2 blueprint file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["2.0.0"]
    system: V2System
    entry: Identifier | None = Field(
        None,
        description="The component that receives outside requests (the converter names v1's entry); "
        "when absent, the APIEndpoint, else a Source or Scheduler, else a component nothing is bound to.",
    )
    components: list[V2Component] = Field(min_length=1)
    bindings: list[V2Binding] = Field(default_factory=list)

    @field_validator("components")
    @classmethod
    def _unique_component_names(cls, components: list[V2Component]) -> list[V2Component]:
        return require_unique_names(components)

    @model_validator(mode="after")
    def _entry_is_a_component(self) -> V2Blueprint:
        if self.entry is not None and self.entry not in {c.name for c in self.components}:
            raise LocatedError(("entry",), f"a component of this system, not '{self.entry}'")
        return self

    @field_validator("bindings")
    @classmethod
    def _bindings_join_components(cls, bindings: list[V2Binding], info: ValidationInfo) -> list[V2Binding]:
        """Each binding joins two components of this system, each output is bound once, and no call cycles.

        Which *ports* a component has depends on its recipe and config, so a
        binding to a missing port is the validation gate's finding; a binding
        to a missing *component* is a broken file. A cycle is refused because
        calls are request/response over bounded streams: a component waiting
        on itself (directly or around a loop) never gets its answer.
        """
        components = info.data.get("components")
        if components is None:
            return bindings  # the components' own error is reported
        names = {c.name for c in components}
        calls: dict[str, set[str]] = {}
        bound: dict[str, int] = {}
        for i, b in enumerate(bindings):
            for field, ref in (("from", b.source), ("to", b.target)):
                if ref.split(".")[0] not in names:
                    raise LocatedError((i, field), f"a component of this system, not '{ref.split('.')[0]}'")
            if b.source in bound:
                raise LocatedError(
                    (i, "from"),
                    f"each output bound once; '{b.source}' is bound in bindings[{bound[b.source]}] too",
                )
            bound[b.source] = i
            calls.setdefault(b.source.split(".")[0], set()).add(b.target.split(".")[0])
        loop = find_cycle(calls)
        if loop:
            i = next(
                i
                for i, b in enumerate(bindings)
                if b.source.split(".")[0] == loop[-2] and b.target.split(".")[0] == loop[-1]
            )
            raise LocatedError((i,), f"bindings without a call cycle; found {' -> '.join(loop)}")
        return bindings

    def to_document(self) -> dict[str, Any]:
        """The YAML-ready mapping, with ``from``/``to`` keys as written in files (no ``entry: null``)."""
        doc = self.model_dump(mode="json", by_alias=True)
        if doc.get("entry") is None:
            doc.pop("entry", None)
        return doc


def load_v2_blueprint(path: str | Path) -> V2Blueprint:
    """Load and validate a v2 ``blueprint.yaml``; raises BlueprintError naming file and path."""
    return load_model_file(V2Blueprint, path)
