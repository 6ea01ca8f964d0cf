"""Graphviz (DOT) pictures of blueprints, for the Conversion page: components as nodes, wires as edges.

Every name in a blueprint is a plain identifier (the models enforce it), so
names go into DOT as they are, with no escaping to get wrong.
"""

from __future__ import annotations

from engine.models.blueprint_v1 import V1Blueprint
from engine.models.blueprint_v2 import V2Blueprint

HEADER = 'rankdir=LR; node [shape=box, style=rounded, fontname="Helvetica"]; edge [fontsize=9];'
NEWLINE = "\\n"  # DOT's own line break inside a label


def v1_dot(bp: V1Blueprint) -> str:
    """Components and their RPC calls; calls to missing components drawn dashed red."""
    names = {c.name for c in bp.system.components}
    lines = ["digraph v1 {", HEADER]
    lines += [f'{c.name} [label="{c.name}{NEWLINE}{c.type}"];' for c in bp.system.components]
    for c in bp.system.components:
        for ref in c.calls:
            callee, _, method = ref.partition(".")
            style = "" if callee in names else ", color=red, style=dashed"
            lines.append(f'{c.name} -> {callee} [label="{method}"{style}];')
    return "\n".join(lines + ["}"])


def v2_dot(bp: V2Blueprint) -> str:
    """Recipe components and their port bindings."""
    lines = ["digraph v2 {", HEADER]
    lines += [f'{c.name} [label="{c.name}{NEWLINE}{c.recipe}"];' for c in bp.components]
    for b in bp.bindings:
        src, _, out = b.source.partition(".")
        dst, _, inp = b.target.partition(".")
        lines.append(f'{src} -> {dst} [label="{out} -> {inp}"];')
    return "\n".join(lines + ["}"])
