"""The v1 (RPC) blueprint: components that call each other synchronously.

A v1 ``blueprint.yaml`` looks like::

    system:
      name: todo_api_system
      description: ...
      version: 1.0.0
      components:
        - name: gateway
          type: APIGateway
          configuration: {routes: {create_todo: controller.create}}
          calls: [controller.create]

A call to a component that does not exist is *not* a load error: the file
loads, and the v1 validator reports it as a failed check. ``configuration``
is free-form (a team's own code reads it), so any YAML value loads. Structural problems
(missing fields, wrong types, duplicate names) are load errors.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.models.common import DottedRef, Identifier, load_model_file, require_unique_names


class V1Component(BaseModel):
    """One RPC component of a v1 system."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier = Field(description="Unique within the system; also the module file name.")
    type: Identifier = Field(description="Component type, e.g. DataStore, APIGateway, Processor.")
    description: str = Field("", description="Free text for humans.")
    configuration: Any = Field(
        default_factory=dict,
        description="Settings for the component's code, any YAML value (a mapping, a list, ...), passed "
        "to ``Component`` as is.",
    )
    calls: list[DottedRef] = Field(
        default_factory=list, description="``<component>.<method>`` this component calls."
    )


class V1System(BaseModel):
    """The ``system`` section of a v1 blueprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier = Field(description="System name; must equal its folder name in a fleet.")
    description: str = Field(description="What the system is for.")
    version: str = Field(min_length=1, max_length=64, description="The system's own version string.")
    created: dt.date | None = Field(None, description="When the system was generated (optional).")
    category: Identifier | None = Field(
        None, description="Fleet category (todo, api, ...); derived from the name when absent."
    )
    components: list[V1Component] = Field(min_length=1, description="At least one component.")

    @field_validator("components")
    @classmethod
    def _unique_component_names(cls, components: list[V1Component]) -> list[V1Component]:
        return require_unique_names(components)


class V1Blueprint(BaseModel):
    """A whole v1 blueprint file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: V1System

    def component(self, name: str) -> V1Component | None:
        """The component called ``name``, or None."""
        return next((c for c in self.system.components if c.name == name), None)


def load_v1_blueprint(path: str | Path) -> V1Blueprint:
    """Load and validate a v1 ``blueprint.yaml``; raises BlueprintError naming file and path."""
    return load_model_file(V1Blueprint, path)
