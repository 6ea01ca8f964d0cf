"""Pydantic models: blueprints v1/v2 and the results the engine produces."""

from engine.models.blueprint_v1 import V1Blueprint, V1Component, V1System, load_v1_blueprint
from engine.models.blueprint_v2 import V2Binding, V2Blueprint, V2Component, V2System, load_v2_blueprint

__all__ = [
    "V1Blueprint",
    "V1Component",
    "V1System",
    "V2Binding",
    "V2Blueprint",
    "V2Component",
    "V2System",
    "load_v1_blueprint",
    "load_v2_blueprint",
]
