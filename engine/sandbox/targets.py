"""Small targets for :func:`engine.sandbox.run_isolated` that any caller may use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.runtime.legacy import load_component_module  # at module level: the worker loads it once


def load_module(payload: dict[str, Any]) -> list[str]:
    """Import the Python file ``payload['path']`` in isolation; returns the public names it defines."""
    module = load_component_module(Path(payload["path"]))
    return sorted(name for name in vars(module) if not name.startswith("_"))
