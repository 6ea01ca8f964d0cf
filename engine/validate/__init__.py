"""Validation: the v1 validator (and, with conversion, the port-based validation gate)."""

from engine.validate.v1 import validate_v1_fleet, validate_v1_system

__all__ = ["validate_v1_fleet", "validate_v1_system"]
