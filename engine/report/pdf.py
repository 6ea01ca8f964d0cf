"""The post-mortem as PDF, with fpdf2: tables, and the charts as images on the page.

Why fpdf2: pure Python, no system libraries (a browser or cairo would be
needed by the HTML-to-PDF routes), and it embeds TrueType fonts, so names and
reasons in any language print. The font is DejaVu Sans, which matplotlib
ships (and the report already needs matplotlib for its charts).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

from engine.report.document import Bullets, Document, Image, Paragraph, Table

FONT = "DejaVu"


def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _new_pdf():  # noqa: ANN202 - fpdf2's FPDF
    from fpdf import FPDF

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    fonts = _font_dir()
    pdf.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_font(FONT, "I", str(fonts / "DejaVuSans-Oblique.ttf"))
    pdf.set_creator("Switchyard")
    pdf.add_page()
    return pdf


def _table(pdf, block: Table) -> None:  # noqa: ANN001
    if not block.rows:
        pdf.set_font(FONT, "I", 9)
        pdf.multi_cell(0, 5, block.empty, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        return
    pdf.set_font(FONT, "", 8)
    limit = _cell_limit(pdf.epw / max(1, len(block.header)))
    with pdf.table(text_align="LEFT", line_height=4.5, first_row_as_headings=True) as grid:
        for row in [block.header, *block.rows]:
            line = grid.row()
            for value in row:
                line.cell(value if len(value) <= limit else value[: limit - 1] + "…")
    pdf.ln(3)


def _cell_limit(column_mm: float, lines: int = 30) -> int:
    """Most characters a cell of a ``column_mm`` wide column may hold in the PDF.

    fpdf2 cannot split one table row over two pages, and refuses a row taller than a page
    ("row ... too high"): a long reason in a table of many narrow columns did that to the
    post-mortem of a promoted system. So the PDF cuts such a cell at about ``lines`` lines
    (8 pt DejaVu: ~1.7 mm a character); the Markdown and HTML exports keep the whole text.
    """
    return max(40, int(column_mm / 1.7) * lines)


def _png_aspect(png: bytes) -> float:
    """Height / width of a PNG, from its header (the IHDR chunk is always first)."""
    width, height = struct.unpack(">II", png[16:24])
    return height / width


def _image(pdf, block: Image) -> None:  # noqa: ANN001
    width = min(170, pdf.epw)
    needed = 6 + width * _png_aspect(block.chart.png) + 5
    if pdf.get_y() + needed > pdf.page_break_trigger:  # keep the title with its chart
        pdf.add_page()
    pdf.set_font(FONT, "B", 10)
    pdf.multi_cell(0, 6, block.chart.title, new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(block.chart.png), w=width)
    pdf.set_font(FONT, "I", 8)
    pdf.multi_cell(0, 4.5, block.chart.caption, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def render_pdf(doc: Document) -> bytes:
    pdf = _new_pdf()
    pdf.set_title(doc.title)
    pdf.set_font(FONT, "B", 18)
    pdf.multi_cell(0, 10, doc.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "I", 9)
    pdf.multi_cell(0, 5, doc.subtitle, new_x="LMARGIN", new_y="NEXT")
    for section in doc.sections:
        pdf.ln(3)
        if pdf.get_y() > pdf.page_break_trigger - 30:  # a heading never ends a page
            pdf.add_page()
        pdf.set_font(FONT, "B", 13)
        pdf.multi_cell(0, 8, section.heading, new_x="LMARGIN", new_y="NEXT")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                pdf.set_font(FONT, "", 10)
                pdf.multi_cell(0, 5, block.text, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            elif isinstance(block, Bullets):
                pdf.set_font(FONT, "", 10)
                for item in block.items:
                    pdf.multi_cell(0, 5, f"•  {item}", new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
            elif isinstance(block, Table):
                _table(pdf, block)
            else:
                _image(pdf, block)
    return bytes(pdf.output())
