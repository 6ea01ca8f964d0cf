"""The post-mortem as one self-contained HTML page: inline CSS, charts as data: URIs, no script.

Every piece of text goes through ``html.escape``: system names, reasons and
notes are typed by people and a report is opened in a browser, so a name
like ``<script>`` must arrive as text.
"""

from __future__ import annotations

import base64
from html import escape

from engine.report.document import Bullets, Document, Image, Paragraph, Table

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #1f2328; }
h1 { margin-bottom: 0.2em; } .subtitle { color: #59636e; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #d1d9e0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } figure { margin: 1em 0; } figcaption { color: #59636e; font-size: 0.9em; }
img { max-width: 100%; } .empty { color: #59636e; font-style: italic; }
"""


def _table(block: Table) -> str:
    if not block.rows:
        return f'<p class="empty">{escape(block.empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in block.header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _block(block: Paragraph | Bullets | Table | Image) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    data = base64.b64encode(block.chart.png).decode()
    return (
        f'<figure><img alt="{escape(block.chart.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(block.chart.title)}: {escape(block.chart.caption)}</figcaption></figure>"
    )


def render_html(doc: Document) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # the page may not load or run anything: a report is read, often offline, and must stay inert
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f"<title>{escape(doc.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(doc.title)}</h1>",
        f'<p class="subtitle">{escape(doc.subtitle)}</p>',
    ]
    for section in doc.sections:
        parts.append(f"<section><h2>{escape(section.heading)}</h2>")
        parts += [_block(b) for b in section.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
