"""The ``pdf`` renderer: a printable A4 invoice or credit note, drawn with fpdf2.

It shows what the HTML page shows (both come from
:func:`hub_plugins.renderers.humanize.present`): seller and buyer, the
invoice's facts, the lines with their human quantities and tiers, grouped
by member on an enterprise parent's invoice, the VAT breakdown, the totals
and the payment terms. Long invoices break across pages; each page repeats
the lines' header, says which invoice it continues and is numbered
"Page X of Y". Text wraps inside its column, numbers are right-aligned.

Why fpdf2 and not WeasyPrint (which would print the HTML page as is):
measured with ``bench/bench_render_html_pdf.py --compare-weasyprint`` (one
process, WeasyPrint 70 from PyPI on Debian's Pango 1.50) on this 2-core
machine while other jobs kept it busy (load average 4 to 5), so the
figures are pessimistic; in brackets, per second of the process's own CPU
time, the steadier figure:

================================  ======================  ====================
documents per second              fpdf2                   WeasyPrint
================================  ======================  ====================
20 lines (1,000 bench invoices)   11.4 (20.3 per CPU-s)   0.5 (1.1 per CPU-s)
240 lines (long-itemized)         3.2 (6.6 per CPU-s)     0.1 (0.2 per CPU-s)
================================  ======================  ====================

fpdf2 is 18 to 30 times faster: 10,000 invoices of 20 lines take about 8
CPU-minutes (4 minutes on the two cores) with it and about 150 with
WeasyPrint, which also needs Pango and its system libraries. The layout
here is simple enough to draw directly. Of fpdf2's ~50 ms per document,
about 12 ms load the two fonts, 17 ms subset and embed them (fontTools),
15 ms draw and 1 ms format the figures.

Fonts. The PDF embeds its fonts (Factur-X needs PDF/A-3, which allows no
other), DejaVu Sans regular and bold, so €, accents and Greek or Cyrillic
names print. No font file ships with the hub; the renderer looks, in this
order, in the ``font_dir`` option (relative to hub.toml), then
``/usr/share/fonts/truetype/dejavu`` (Debian, Ubuntu: ``fonts-dejavu-core``),
``/usr/share/fonts/dejavu`` and ``/usr/share/fonts/dejavu-sans-fonts``
(Fedora), ``/usr/share/fonts/TTF`` (Arch), ``/usr/local/share/fonts``,
``/Library/Fonts`` and matplotlib's bundled fonts; it fails with an error
that says so when none holds ``DejaVuSans.ttf`` and ``DejaVuSans-Bold.ttf``.
The options ``font`` and ``bold_font`` name other TTF files instead (a
Noto CJK font for Japanese names). A document with a character the fonts
lack is refused (:class:`MissingGlyphs`) rather than printed with a hole.
Loading and subsetting the whole 6,000-glyph fonts costs about 0.2 s per
document, so the renderer prepares, when first needed, subsets of them
(:data:`SUBSETS`: Latin with the usual punctuation and €; then also Greek
and Cyrillic) and gives each document the smallest that has all its
characters.

Deterministic: the creation date is the issue date, the file identifier a
hash of the invoice, and nothing else varies.

This module owns the renderer, its options and where it finds its fonts;
the subsets are ``pdf_fonts.py``'s, the drawing ``pdf_layout.py``'s. It
must not format a figure (``humanize.py`` does) nor know the store or the
hub's stages.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hub.plugin import Document, InstanceConfig, RenderContext, RendererType, hookimpl
from hub_plugins.renderers.humanize import present
from hub_plugins.renderers.pdf_fonts import SUBSETS, Face, Fonts, MissingGlyphs
from hub_plugins.renderers.pdf_layout import InvoicePDF, chars, draw

__all__ = ["FONT_DIRS", "FONT_FILES", "SUBSETS", "Face", "FontNotFound", "Fonts", "MissingGlyphs", "PdfRenderer",
           "find_fonts", "render_pdf"]

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "font_dir": {"type": "string", "minLength": 1,
                     "description": "A folder holding DejaVuSans.ttf and DejaVuSans-Bold.ttf, searched first."},
        "font": {"type": "string", "minLength": 1,
                 "description": "A TTF file for the text, instead of DejaVu Sans (needs bold_font)."},
        "bold_font": {"type": "string", "minLength": 1,
                      "description": "A TTF file for the bold text, instead of DejaVu Sans Bold."},
    },
    "dependentRequired": {"font": ["bold_font"], "bold_font": ["font"]},
}

FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/dejavu-sans-fonts",
    "/usr/share/fonts/TTF", "/usr/local/share/fonts", "/Library/Fonts",
)


@hookimpl
def hub_register_renderer_types() -> list[RendererType]:
    return [RendererType(
        name="pdf",
        description="The invoice as a printable A4 PDF (fpdf2, fonts embedded).",
        config_schema=CONFIG_SCHEMA,
        factory=PdfRenderer,
    )]


class FontNotFound(RuntimeError):
    """No usable font file: the message says where the renderer looked."""


def _matplotlib_fonts() -> list[Path]:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return []
    return [Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"]


def find_fonts(config: InstanceConfig) -> tuple[Path, Path]:
    """The regular and bold font files, in the documented search order."""
    opts = config.options
    if opts.get("font"):
        paths = (config.path(opts["font"]), config.path(opts["bold_font"]))
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FontNotFound(f"pdf renderer {config.name!r}: font file not found: {', '.join(missing)}")
        return paths
    dirs = [config.path(opts["font_dir"])] if opts.get("font_dir") else []
    dirs += [Path(d) for d in FONT_DIRS] + _matplotlib_fonts()
    for d in dirs:
        if all((d / f).is_file() for f in FONT_FILES):
            return d / FONT_FILES[0], d / FONT_FILES[1]
    raise FontNotFound(
        f"pdf renderer {config.name!r}: no folder holds {' and '.join(FONT_FILES)}; looked in "
        f"{', '.join(str(d) for d in dirs)}. Install them (apt-get install fonts-dejavu-core, "
        "dnf install dejavu-sans-fonts) or set the renderer's font_dir option, or font and bold_font."
    )


def render_pdf(invoice: Mapping[str, Any], fonts: Fonts) -> bytes:
    """The PDF of ``invoice`` as bytes."""
    doc = present(invoice)
    pdf = InvoicePDF(doc, fonts.for_text(chars(doc)))
    digest = hashlib.md5(json.dumps(invoice, sort_keys=True).encode(), usedforsecurity=False).hexdigest().upper()
    pdf.file_id = lambda: f"<{digest}><{digest}>"  # type: ignore[method-assign]
    issued = invoice.get("issue_date") or invoice["period_end"][:10]
    pdf.set_creation_date(datetime.fromisoformat(issued).replace(tzinfo=timezone.utc))
    pdf.set_title(f"{doc.title} {doc.number}")
    pdf.set_author(doc.seller.name)
    pdf.set_subject(f"{doc.title} {doc.number} for {doc.buyer.name}")
    pdf.set_creator("billing hub")
    pdf.set_lang(doc.lang)
    draw(pdf, doc)
    return bytes(pdf.output())


class PdfRenderer:
    """A ``pdf`` renderer instance; finds and prepares its fonts when built."""

    format = "pdf"
    requires: tuple[str, ...] = ()

    def __init__(self, config: InstanceConfig) -> None:
        self.fonts = Fonts(*find_fonts(config))

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        return Document(file_name=f"{invoice['number']}.pdf", media_type="application/pdf",
                        content=render_pdf(invoice, self.fonts))
