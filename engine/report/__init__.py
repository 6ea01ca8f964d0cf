"""Post-mortem reports: collect a scope's evidence, lay it out once, render it as Markdown, HTML or PDF."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from engine.errors import InputError
from engine.report.collect import PostMortem
from engine.report.document import build_document
from engine.report.html_page import render_html
from engine.report.markdown import render_markdown
from engine.report.pdf import render_pdf
from engine.report.scope import Scope, parse_scope

ReportFormat = Literal["md", "html", "pdf"]
FORMATS: dict[str, tuple[str, str]] = {
    "md": ("text/markdown", "md"),
    "html": ("text/html", "html"),
    "pdf": ("application/pdf", "pdf"),
}
"""format -> (MIME type, file extension)."""


def file_name(scope: Scope, fmt: str, as_of: dt.datetime) -> str:
    """``post-mortem_<scope>_<YYYYMMDD>.<ext>``: the same name from the page and the CLI."""
    return f"post-mortem_{scope.slug}_{as_of:%Y%m%d}.{FORMATS[fmt][1]}"


def render(post: PostMortem, fmt: str) -> bytes:
    """The post-mortem in one format, as the bytes of the file."""
    doc = build_document(post)
    if fmt == "md":
        return render_markdown(doc).encode()
    if fmt == "html":
        return render_html(doc).encode()
    if fmt == "pdf":
        return render_pdf(doc)
    raise InputError("--format", "value", " | ".join(FORMATS), fmt)


__all__ = ["FORMATS", "PostMortem", "ReportFormat", "Scope", "file_name", "parse_scope", "render"]
