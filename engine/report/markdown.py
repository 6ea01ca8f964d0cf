"""The post-mortem as Markdown: one file, charts embedded as data: URIs so nothing else travels with it."""

from __future__ import annotations

import base64
import html
import re

from engine.report.document import Bullets, Document, Image, Paragraph, Table

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def escape(text: str) -> str:
    """User text as literal Markdown: HTML entities for < > &, backslashes before Markdown syntax."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", html.escape(text, quote=False)).replace("\n", " ")


def _table(block: Table) -> list[str]:
    if not block.rows:
        return [f"_{escape(block.empty)}_", ""]
    lines = ["| " + " | ".join(escape(h) for h in block.header) + " |", "|" + "---|" * len(block.header)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in block.rows]
    return [*lines, ""]


def render_markdown(doc: Document) -> str:
    out = [f"# {escape(doc.title)}", "", f"_{escape(doc.subtitle)}_", ""]
    for section in doc.sections:
        out += [f"## {escape(section.heading)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out += [escape(block.text), ""]
            elif isinstance(block, Bullets):
                out += [*(f"- {escape(item)}" for item in block.items), ""]
            elif isinstance(block, Table):
                out += _table(block)
            elif isinstance(block, Image):
                data = base64.b64encode(block.chart.png).decode()
                out += [
                    f"![{escape(block.chart.title)}](data:image/png;base64,{data})",
                    "",
                    f"_{escape(block.chart.caption)}_",
                    "",
                ]
    return "\n".join(out)
