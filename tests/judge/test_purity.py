"""The judge package holds only pure judgement: frames, policy and calibration in, a verdict out.

Choosing the run, reading its samples from the store or from Prometheus and
recording the verdict are use cases (:mod:`engine.judging`); no module of
engine/judge may import what does that I/O, at its top or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

JUDGE = Path(__file__).resolve().parents[2] / "engine" / "judge"

FORBIDDEN = (
    "duckdb",
    "engine.store",
    "engine.metrics.prometheus",
    "engine.deploy",
    "engine.access",
    "engine.use_case",
    "engine.workspace",
    "streamlit",
)
"""Stores, Prometheus, deployments, roles, the after-change hooks, the workspace, the UI."""


def imported(source: str, package: str = "engine.judge") -> list[tuple[int, str]]:
    """Every module ``source`` imports (``from a import b`` counts as ``a`` and ``a.b``; a relative
    import is read from ``package``), with its line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def forbidden_imports(path: Path) -> list[str]:
    """``file:line imports name`` for each import of ``path`` that is or lies under a FORBIDDEN module."""
    source = path.read_text(encoding="utf-8")
    return [
        f"{path.name}:{line} imports {name}"
        for line, name in sorted(imported(source))
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    ]


@pytest.mark.parametrize("path", sorted(JUDGE.glob("*.py")), ids=lambda p: p.name)
def test_no_judge_module_reads_a_store_or_prometheus_or_records_anything(path: Path) -> None:
    assert forbidden_imports(path) == []


def test_the_check_finds_such_imports_wherever_they_are_written(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import duckdb\n"
        "from engine import store\n"
        "from engine.store.events import latest_after\n"
        "import engine.metrics.prometheus as prom\n"
        "def f():\n"
        "    from engine.workspace import Workspace\n"
        "    import streamlit as st\n"
        "from engine.judge.stats import Interval\n"
        "from engine.metrics.config import PrometheusConfig\n"
        "from engine.storage import x\n"
        "from .. import store\n",
        encoding="utf-8",
    )
    assert forbidden_imports(sample) == [
        "sample.py:1 imports duckdb",
        "sample.py:2 imports engine.store",
        "sample.py:3 imports engine.store.events",
        "sample.py:3 imports engine.store.events.latest_after",
        "sample.py:4 imports engine.metrics.prometheus",
        "sample.py:6 imports engine.workspace",
        "sample.py:6 imports engine.workspace.Workspace",
        "sample.py:7 imports streamlit",
        "sample.py:11 imports engine.store",
    ]
    assert len(list(JUDGE.glob("*.py"))) > 10  # the glob looks where the judge is
