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
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fpdf import FPDF

from hub.hookspecs import hookimpl
from hub.plugin_types import Document, InstanceConfig, RenderContext, RendererType
from hub_plugins.renderers.fonts import add_font
from hub_plugins.renderers.humanize import Presentation, present

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

_LATIN = ((0x20, 0x7E), (0xA0, 0x17F), (0x2002, 0x200B), (0x2010, 0x2026), (0x202F, 0x2030), (0x2039, 0x203A),
          (0x20AC, 0x20AC), (0x2122, 0x2122), (0x2192, 0x2192), (0x2212, 0x2212), (0x2248, 0x2248))
#: the prepared subsets of the fonts, smallest first: a document uses the
#: first that has all its characters, else the whole font
SUBSETS = (
    ("latin", _LATIN),
    ("european", _LATIN + ((0x180, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x1E00, 0x1EFF))),
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


class MissingGlyphs(ValueError):
    """The invoice has characters the fonts cannot print (named in the message)."""


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


@dataclass(frozen=True)
class Face:
    """A font file and the advance width of each character, in 1/1000 em
    (rounded as fpdf2 rounds them, so measuring here and there agree)."""

    path: Path
    widths: Mapping[int, int]
    default: int
    #: the width of texts measured before, in 1/1000 em (labels and
    #: descriptions repeat from line to line and invoice to invoice)
    cache: dict[str, int] = field(default_factory=dict, compare=False, repr=False)


def _face(font: Any, path: Path) -> Face:
    scale = 1000 / font["head"].unitsPerEm
    metrics = font["hmtx"].metrics
    widths = {cp: round(scale * metrics[name][0] + 0.001) for cp, name in font.getBestCmap().items()}
    return Face(path, widths, round(scale * metrics[".notdef"][0]))


class Fonts:
    """A renderer's fonts: the whole regular and bold files, and their
    subsets (:data:`SUBSETS`), made when first needed into a private
    temporary folder (fpdf2 loads fonts by path)."""

    def __init__(self, regular: Path, bold: Path) -> None:
        self.files = (regular, bold)
        self._faces: dict[str, tuple[Face, Face]] = {}
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._ranges = {name: frozenset(c for lo, hi in ranges for c in range(lo, hi + 1))
                        for name, ranges in SUBSETS}

    def for_text(self, chars: set[str]) -> tuple[Face, Face]:
        """The regular and bold faces of the smallest subset that has every
        one of ``chars``, else of the whole fonts.

        :raises MissingGlyphs: when the whole fonts lack some of ``chars``:
            an invoice must not print a legal name with holes in it."""
        codes = {ord(c) for c in chars if unicodedata.category(c) not in ("Cc", "Cf")}
        name = next((n for n, _ in SUBSETS if codes <= self._ranges[n]), "whole")
        if name not in self._faces:
            self._faces[name] = (self._make(name, 0), self._make(name, 1))
        faces = self._faces[name]
        if name == "whole":
            missing = sorted(c for c in codes if c not in faces[0].widths or c not in faces[1].widths)
            if missing:
                shown = ", ".join(f"{chr(c)!r} (U+{c:04X})" for c in missing[:10])
                raise MissingGlyphs(
                    f"the fonts {self.files[0].name} and {self.files[1].name} have no glyph for {shown}"
                    f"{' and more' if len(missing) > 10 else ''}: set the pdf renderer's font and bold_font "
                    "options to fonts that have them (Noto Sans CJK for Chinese, Japanese or Korean names)")
        return faces

    def _make(self, name: str, which: int) -> Face:
        from fontTools import subset
        from fontTools.ttLib import TTFont

        path = self.files[which]
        font = TTFont(path, recalcTimestamp=False)
        if name == "whole":
            return _face(font, path)
        options = subset.Options()
        options.layout_features = []
        options.hinting = False  # print needs no hints, and every table costs time in each document
        options.notdef_outline = True
        options.recommended_glyphs = True
        options.name_IDs = [1, 2, 4, 6]
        options.name_languages = [0x409]
        options.drop_tables += ["GPOS", "GSUB", "GDEF", "MATH", "FFTM", "hdmx", "kern", "gasp", "VDMX", "LTSH",
                                "DSIG"]
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=self._ranges[name])
        subsetter.subset(font)
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="hub-pdf-fonts-")
        out = Path(self._dir.name) / f"{name}-{which}{path.suffix}"
        font.save(out)
        return _face(font, out)


# --------------------------------------------------------------------------
# Drawing

ACCENT = (31, 78, 121)
INK = (29, 35, 43)
MUTED = (102, 112, 124)
RULE = (221, 226, 232)
SHADE = (243, 246, 249)
WHITE = (255, 255, 255)

PAGE_W, PAGE_H = 210.0, 297.0
LEFT, RIGHT, TOP = 16.0, 194.0, 16.0
BOTTOM = PAGE_H - 20.0  # content ends here; the footer is below
PT = 0.3528  # mm per point
#: the lines' columns: (heading, width in mm, right-aligned)
COLUMNS = (("#", 8.0, False), ("Description", 64.0, False), ("Quantity", 46.0, True),
           ("Unit price", 30.0, True), ("Amount", 30.0, True))
PAD = 1.6


@dataclass(frozen=True)
class _Run:
    """A piece of text in one style, wrapped to a width."""

    text: str
    size: float = 9.0
    bold: bool = False
    color: tuple[int, int, int] = INK


def _chars(doc: Presentation) -> set[str]:
    seen: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            seen.update(value)
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)
        elif hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:
                walk(getattr(value, name))

    walk(doc)
    return seen


class _InvoicePDF(FPDF):
    def __init__(self, doc: Presentation, faces: tuple[Face, Face]) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc = doc
        self.faces = faces
        add_font(self, "Sans", "", faces[0].path)  # parsed once per process (fonts.py), the same bytes
        add_font(self, "Sans", "B", faces[1].path)
        for font in self.fonts.values():
            # The subset fpdf2 embeds keeps each glyph's outline as it is:
            # recomputing its bounds costs half the time of writing the PDF.
            font.ttfont.recalcBBoxes = False
        self.set_auto_page_break(False)
        self.set_margins(LEFT, TOP, PAGE_W - RIGHT)
        self.c_margin = 0
        self._style: tuple[bool, float, tuple[int, int, int]] | None = None

    # -- text primitives

    def style(self, run: _Run) -> None:
        key = (run.bold, run.size, run.color)
        if key != self._style:
            self.set_font("Sans", "B" if run.bold else "", run.size)
            self.set_text_color(*run.color)
            self._style = key

    def measure(self, text: str, run: _Run) -> float:
        """The width of ``text`` in ``run``'s style, in mm (fpdf2's own
        get_string_width costs ten times as much)."""
        face = self.faces[run.bold]
        units = face.cache.get(text)
        if units is None:
            if len(face.cache) > 50_000:
                face.cache.clear()
            widths, default = face.widths, face.default
            units = face.cache[text] = sum([widths.get(ord(c), default) for c in text])
        return units * run.size * PT / 1000

    def wrap(self, run: _Run, width: float) -> list[str]:
        """``run``'s text as lines no wider than ``width`` (breaking words
        that are too long on their own)."""
        if self.measure(run.text, run) <= width and "\n" not in run.text:
            return [run.text]
        lines: list[str] = []
        for paragraph in run.text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if self.measure(candidate, run) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                while self.measure(word, run) > width and len(word) > 1:
                    cut = len(word) - 1
                    while cut > 1 and self.measure(word[:cut], run) > width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                line = word
            lines.append(line)
        return lines

    def block(self, runs: list[_Run], width: float) -> list[tuple[_Run, str]]:
        return [(run, line) for run in runs if run.text for line in self.wrap(run, width)]

    @staticmethod
    def height(lines: list[tuple[_Run, str]]) -> float:
        return sum(run.size * PT * 1.3 for run, _ in lines)

    def draw(self, lines: list[tuple[_Run, str]], x: float, y: float, width: float, right: bool = False) -> None:
        for run, text in lines:
            step = run.size * PT * 1.3
            self.style(run)
            tx = x + width - self.measure(text, run) if right else x
            self.text(tx, y + run.size * PT * 1.0, text)
            y += step

    def hline(self, y: float, color: tuple[int, int, int] = RULE, width: float = 0.2,
              x0: float = LEFT, x1: float = RIGHT) -> None:
        self.set_draw_color(*color)
        self.set_line_width(width)
        self.line(x0, y, x1, y)

    # -- page furniture

    def header(self) -> None:
        if self.page_no() == 1:
            return
        doc = self.doc
        self.draw([(_Run(doc.seller.name, 8, True, ACCENT), doc.seller.name)], LEFT, 10, 90)
        label = f"{doc.title} {doc.number} (continued)"
        self.draw([(_Run(label, 8, False, MUTED), label)], RIGHT - 90, 10, 90, right=True)
        self.hline(15, ACCENT, 0.4)

    def footer(self) -> None:
        self.hline(PAGE_H - 15, RULE)
        text = " · ".join(self.doc.footer)
        self.draw([(_Run(text, 7, False, MUTED), text)], LEFT, PAGE_H - 13, 120)
        self.style(_Run("", 7, False, MUTED))
        self.set_xy(RIGHT - 40, PAGE_H - 13.4)
        self.cell(40, 4, f"Page {self.page_no()} of {{nb}}", align="R")

    def new_page(self) -> float:
        self.add_page()
        self._style = None  # add_page restores the font the header and footer changed
        return TOP if self.page_no() == 1 else 21.0


def _first_page_top(pdf: _InvoicePDF, doc: Presentation) -> float:
    y = pdf.new_page()
    brand = pdf.block([_Run(doc.seller.name, 15, True, ACCENT)], 100)
    title = pdf.block([_Run(doc.title, 20, True), _Run(doc.number, 11, False, MUTED)], 80)
    pdf.draw(title, RIGHT - 80, y, 80, right=True)
    pdf.draw(brand, LEFT, y + pdf.height(title) - pdf.height(brand), 100)
    y += pdf.height(title) + 3
    pdf.hline(y, ACCENT, 0.6)
    y += 6
    half = (RIGHT - LEFT - 8) / 2
    bottom = y
    for i, (heading, party) in enumerate((("FROM", doc.seller), ("BILL TO", doc.buyer))):
        x = LEFT + i * (half + 8)
        runs = [_Run(heading, 6.5, True, MUTED), _Run(party.name, 9.5, True)]
        runs += [_Run(line) for line in party.address]
        block = pdf.block(runs, half)
        pdf.draw(block, x, y, half)
        yy = y + pdf.height(block) + 1.5
        for label, value in party.ids:
            value_lines = pdf.block([_Run(value, 7.5)], half - 22)
            pdf.draw([(_Run(label, 7.5, False, MUTED), label)], x, yy, 22)
            pdf.draw(value_lines, x + 22, yy, half - 22)
            yy += pdf.height(value_lines)
        bottom = max(bottom, yy)
    y = bottom + 4
    # the facts, side by side in a shaded band
    width = (RIGHT - LEFT - 8) / len(doc.facts)
    cells = [pdf.block([_Run(label.upper(), 6, True, MUTED), _Run(value, 9, True)], width - 3)
             for label, value in doc.facts]
    band = max(pdf.height(c) for c in cells) + 5
    pdf.set_fill_color(*SHADE)
    pdf.rect(LEFT, y, RIGHT - LEFT, band, style="F")
    for i, cell in enumerate(cells):
        pdf.draw(cell, LEFT + 4 + i * width, y + 2.5, width - 3)
    y += band + 6
    if doc.is_credit_note and doc.notes:
        block = pdf.block([_Run(n, 9) for n in doc.notes], RIGHT - LEFT - 8)
        height = pdf.height(block) + 5
        pdf.set_fill_color(*SHADE)
        pdf.rect(LEFT, y, RIGHT - LEFT, height, style="F")
        pdf.set_fill_color(*ACCENT)
        pdf.rect(LEFT, y, 1, height, style="F")
        pdf.draw(block, LEFT + 4, y + 2.5, RIGHT - LEFT - 8)
        y += height + 6
    return y


def _table_header(pdf: _InvoicePDF, y: float) -> float:
    pdf.set_fill_color(*ACCENT)
    pdf.rect(LEFT, y, RIGHT - LEFT, 7, style="F")
    x = LEFT
    for heading, width, right in COLUMNS:
        run = _Run(heading.upper(), 7, True, WHITE)
        pdf.draw([(run, run.text)], x + PAD, y + 2.2, width - 2 * PAD, right=right)
        x += width
    return y + 7


def _row_cells(row_texts: list[list[_Run]], pdf: _InvoicePDF) -> tuple[list[list[tuple[_Run, str]]], float]:
    cells = [pdf.block(runs, width - 2 * PAD) for runs, (_, width, _) in zip(row_texts, COLUMNS)]
    return cells, max(pdf.height(c) for c in cells) + 2 * PAD


def _draw_row(pdf: _InvoicePDF, cells: list[list[tuple[_Run, str]]], y: float, height: float,
              rule: tuple[int, int, int] = RULE) -> float:
    x = LEFT
    for cell, (_, width, right) in zip(cells, COLUMNS):
        pdf.draw(cell, x + PAD, y + PAD, width - 2 * PAD, right=right)
        x += width
    pdf.hline(y + height, rule)
    return y + height


def _lines(pdf: _InvoicePDF, doc: Presentation, y: float) -> float:
    y = _table_header(pdf, y)
    for group in doc.groups:
        items: list[tuple[str, Any]] = []
        if group.title:
            items.append(("group", group.title))
        for row in group.rows:
            main = [[_Run(str(row.number), 8.5, False, MUTED)],
                    [_Run(row.description)] + [_Run(n, 7, False, MUTED) for n in row.notes],
                    [_Run(row.quantity)] + ([_Run(row.human, 7, False, MUTED)] if row.human else []),
                    [_Run(row.unit_price)] + ([_Run(f"per {row.per}", 7, False, MUTED)]
                                              if row.per and not row.tiers else []),
                    [_Run(row.amount, 9, True)]]
            items.append(("line", main))
            for tier in row.tiers:
                items.append(("tier", [[], [_Run("   " + tier.label, 7.5, False, MUTED)],
                                       [_Run(tier.quantity, 7.5, False, MUTED)],
                                       [_Run(tier.unit_price, 7.5, False, MUTED)],
                                       [_Run(tier.amount, 7.5, False, MUTED)]]))
            for res in row.resources:
                items.append(("tier", [[], [_Run("   " + res.label, 7.5, False, MUTED),
                                            _Run("   " + res.records, 6.5, False, MUTED)],
                                       [_Run(res.quantity, 7.5, False, MUTED)]
                                       + ([_Run(res.human, 6.5, False, MUTED)] if res.human else []),
                                       [], []]))
        if group.subtotal:
            items.append(("subtotal", [[], [_Run(f"Subtotal {group.title}", 9, True)], [], [],
                                       [_Run(group.subtotal, 9, True)]]))
        for i, (kind, content) in enumerate(items):
            if kind == "group":
                block = pdf.block([_Run(content, 9, True)], RIGHT - LEFT - 2 * PAD)
                height = pdf.height(block) + 2 * PAD
                # keep a group's title with its first line
                _, first = _row_cells(items[i + 1][1], pdf) if i + 1 < len(items) else ([], 0.0)
                if y + height + first > BOTTOM:
                    y = _table_header(pdf, pdf.new_page())
                pdf.set_fill_color(*SHADE)
                pdf.rect(LEFT, y, RIGHT - LEFT, height, style="F")
                pdf.draw(block, LEFT + PAD, y + PAD, RIGHT - LEFT - 2 * PAD)
                y += height
                continue
            cells, height = _row_cells(content, pdf)
            if kind == "tier":
                height -= PAD
            if y + height > BOTTOM:
                y = _table_header(pdf, pdf.new_page())
            y = _draw_row(pdf, cells, y - (PAD / 2 if kind == "tier" else 0), height,
                          ACCENT if kind == "subtotal" else RULE) + (PAD / 2 if kind == "tier" else 0)
    return y + 6


def _summary(pdf: _InvoicePDF, doc: Presentation, y: float) -> float:
    tax_w, tot_w = 80.0, 92.0
    tot_x = RIGHT - tot_w
    rows = []
    for total in doc.totals:
        big = total.kind in ("total", "due")
        size = {"total": 10.5, "due": 11.5}.get(total.kind, 9)
        label = pdf.block([_Run(total.label, size, big, WHITE if total.kind == "due" else INK)]
                          + ([_Run(total.note, 7, False, MUTED)] if total.note else []), tot_w - 36)
        amount = pdf.block([_Run(total.amount, size, big, WHITE if total.kind == "due" else INK)], 30)
        rows.append((total.kind, label, amount, max(pdf.height(label), pdf.height(amount)) + (4.6 if big else 2.6)))
    tax = doc.tax
    tax_cols = (("Category", 32.0, False), ("Rate", 11.0, True), ("Taxable amount", 22.0, True), ("VAT", 15.0, True))
    tax_values = (f"{tax.category} ({tax.code})", tax.rate, tax.taxable, tax.amount)
    reason = pdf.block([_Run(f"Exemption reason: {tax.reason}", 7.5)], tax_w) if tax.reason else []
    needed = max(sum(r[3] for r in rows), 22 + pdf.height(reason))
    if y + needed > BOTTOM:
        y = pdf.new_page()
    # VAT breakdown
    yy = y
    pdf.draw([(_Run("VAT BREAKDOWN", 6.5, True, MUTED), "VAT BREAKDOWN")], LEFT, yy, tax_w)
    yy += 5
    x = LEFT
    for (heading, width, right), value in zip(tax_cols, tax_values):
        pdf.draw([(_Run(heading, 7, False, MUTED), heading)], x, yy, width - 1, right=right)
        cell = pdf.block([_Run(value, 7.5)], width - 1)
        pdf.draw(cell, x, yy + 5, width - 1, right=right)
        x += width
    pdf.hline(yy + 4, RULE, 0.2, LEFT, LEFT + tax_w)
    yy += 10
    if reason:
        pdf.draw(reason, LEFT, yy + 1, tax_w)
    # totals
    for kind, label, amount, height in rows:
        if kind == "due":
            pdf.set_fill_color(*ACCENT)
            pdf.rect(tot_x, y, tot_w, height, style="F")
        if kind in ("sum", "total"):
            pdf.hline(y, INK if kind == "total" else RULE, 0.5 if kind == "total" else 0.2, tot_x, RIGHT)
        inner = 2.3 if kind in ("total", "due") else 1.3
        pdf.draw(label, tot_x + 2, y + inner, tot_w - 36)
        pdf.draw(amount, RIGHT - 32, y + inner, 30, right=True)
        y += height
    return max(y, yy + pdf.height(reason)) + 8


def _notes(pdf: _InvoicePDF, doc: Presentation, y: float) -> None:
    if doc.is_credit_note or not doc.notes:
        return
    block = pdf.block([_Run(n, 9) for n in doc.notes], RIGHT - LEFT)
    if y + pdf.height(block) + 3 > BOTTOM:
        y = pdf.new_page()
    pdf.hline(y, RULE)
    pdf.draw(block, LEFT, y + 3, RIGHT - LEFT)


def render_pdf(invoice: Mapping[str, Any], fonts: Fonts) -> bytes:
    """The PDF of ``invoice`` as bytes."""
    doc = present(invoice)
    pdf = _InvoicePDF(doc, fonts.for_text(_chars(doc)))
    digest = hashlib.md5(json.dumps(invoice, sort_keys=True).encode(), usedforsecurity=False).hexdigest().upper()
    pdf.file_id = lambda: f"<{digest}><{digest}>"  # type: ignore[method-assign]
    issued = invoice.get("issue_date") or invoice["period_end"][:10]
    pdf.set_creation_date(datetime.fromisoformat(issued).replace(tzinfo=timezone.utc))
    pdf.set_title(f"{doc.title} {doc.number}")
    pdf.set_author(doc.seller.name)
    pdf.set_subject(f"{doc.title} {doc.number} for {doc.buyer.name}")
    pdf.set_creator("billing hub")
    pdf.set_lang(doc.lang)
    y = _first_page_top(pdf, doc)
    y = _lines(pdf, doc, y)
    y = _summary(pdf, doc, y)
    _notes(pdf, doc, y)
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
