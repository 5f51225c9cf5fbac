"""The layout of the pdf renderer's A4 page: a
:class:`~hub_plugins.renderers.presentation.Presentation` drawn with fpdf2
(:func:`draw`): the first page's header, parties and facts, the lines'
table (grouped by member, tiers and resources under their line, breaking
across pages with the header repeated and a group's title kept with its
first line), the VAT breakdown with the payment notes under it, beside the totals; every
page has a footer and "Page X of Y".

Text is measured with the fonts' own widths (:class:`~hub_plugins.renderers.
pdf_fonts.Face`), wrapped inside its column, numbers right-aligned.

This module must not format a figure nor read the invoice: it draws what
the presentation says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fpdf import FPDF

from hub_plugins.renderers.fonts import add_font
from hub_plugins.renderers.pdf_fonts import Face
from hub_plugins.renderers.presentation import Presentation


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
COLUMNS = (("no", 9.0, False), ("description", 63.0, False), ("quantity", 46.0, True),
           ("unit_price", 30.0, True), ("amount", 30.0, True))
PAD = 1.6
#: facts in one row of the shaded band; more go onto a second row
FACTS_PER_ROW = 4


@dataclass(frozen=True)
class _Run:
    """A piece of text in one style, wrapped to a width."""

    text: str
    size: float = 9.0
    bold: bool = False
    color: tuple[int, int, int] = INK


def chars(doc: Presentation) -> set[str]:
    seen: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            seen.update(value)
        elif isinstance(value, (tuple, list)):
            for v in value:
                walk(v)
        elif hasattr(value, "__dataclass_fields__"):  # labels are pairs of strings: walked as tuples
            for name in value.__dataclass_fields__:
                walk(getattr(value, name))

    walk(doc)
    return seen


class InvoicePDF(FPDF):
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
        label = doc.label("continued")
        self.draw([(_Run(label, 8, False, MUTED), label)], RIGHT - 90, 10, 90, right=True)
        self.hline(15, ACCENT, 0.4)

    def footer(self) -> None:
        self.hline(PAGE_H - 15, RULE)
        runs = [_Run(" · ".join(self.doc.footer), 7, False, MUTED)]
        if self.doc.legal:
            runs.append(_Run(" · ".join(self.doc.legal), 6, False, MUTED))
        self.draw(self.block(runs, 150), LEFT, PAGE_H - 13.5, 150)
        self.style(_Run("", 7, False, MUTED))
        self.set_xy(RIGHT - 36, PAGE_H - 13.4)
        self.cell(36, 4, self.doc.label("page") % {"page": self.page_no(), "pages": "{nb}"}, align="R")

    def new_page(self) -> float:
        self.add_page()
        self._style = None  # add_page restores the font the header and footer changed
        return TOP if self.page_no() == 1 else 21.0


def _first_page_top(pdf: InvoicePDF, doc: Presentation) -> float:
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
    for i, (heading, party) in enumerate(((doc.label("from").upper(), doc.seller),
                                          (doc.label("bill_to").upper(), doc.buyer))):
        x = LEFT + i * (half + 8)
        runs = [_Run(heading, 6.5, True, MUTED), _Run(party.name, 9.5, True)]
        runs += [_Run(line) for line in party.address]
        block = pdf.block(runs, half)
        pdf.draw(block, x, y, half)
        yy = y + pdf.height(block) + 1.5
        for label, value in party.ids:
            value_lines = pdf.block([_Run(value, 7.5)], half - 25)
            pdf.draw([(_Run(label, 7.5, False, MUTED), label)], x, yy, 25)
            pdf.draw(value_lines, x + 25, yy, half - 25)
            yy += pdf.height(value_lines)
        bottom = max(bottom, yy)
    y = bottom + 4
    # the facts, side by side in a shaded band (rows of at most FACTS_PER_ROW)
    per_row = min(len(doc.facts), FACTS_PER_ROW)
    width = (RIGHT - LEFT - 8) / per_row
    cells = [pdf.block([_Run(label.upper(), 6, True, MUTED), _Run(value, 9, True)], width - 3)
             for label, value in doc.facts]
    rows = [cells[i:i + per_row] for i in range(0, len(cells), per_row)]
    heights = [max(pdf.height(c) for c in row) for row in rows]
    band = sum(heights) + 2.5 * (len(rows) - 1) + 5
    pdf.set_fill_color(*SHADE)
    pdf.rect(LEFT, y, RIGHT - LEFT, band, style="F")
    yy = y + 2.5
    for row, height in zip(rows, heights):
        for i, cell in enumerate(row):
            pdf.draw(cell, LEFT + 4 + i * width, yy, width - 3)
        yy += height + 2.5
    y += band + 6
    if doc.notices:
        block = pdf.block([_Run(n, 9) for n in doc.notices], RIGHT - LEFT - 8)
        height = pdf.height(block) + 5
        pdf.set_fill_color(*SHADE)
        pdf.rect(LEFT, y, RIGHT - LEFT, height, style="F")
        pdf.set_fill_color(*ACCENT)
        pdf.rect(LEFT, y, 1, height, style="F")
        pdf.draw(block, LEFT + 4, y + 2.5, RIGHT - LEFT - 8)
        y += height + 6
    return y


def _table_header(pdf: InvoicePDF, y: float) -> float:
    pdf.set_fill_color(*ACCENT)
    pdf.rect(LEFT, y, RIGHT - LEFT, 7, style="F")
    x = LEFT
    for key, width, right in COLUMNS:
        run = _Run(pdf.doc.label(key).upper(), 7, True, WHITE)
        pdf.draw([(run, run.text)], x + PAD, y + 2.2, width - 2 * PAD, right=right)
        x += width
    return y + 7


def _row_cells(row_texts: list[list[_Run]], pdf: InvoicePDF) -> tuple[list[list[tuple[_Run, str]]], float]:
    cells = [pdf.block(runs, width - 2 * PAD) for runs, (_, width, _) in zip(row_texts, COLUMNS)]
    return cells, max(pdf.height(c) for c in cells) + 2 * PAD


def _draw_row(pdf: InvoicePDF, cells: list[list[tuple[_Run, str]]], y: float, height: float,
              rule: tuple[int, int, int] = RULE) -> float:
    x = LEFT
    for cell, (_, width, right) in zip(cells, COLUMNS):
        pdf.draw(cell, x + PAD, y + PAD, width - 2 * PAD, right=right)
        x += width
    pdf.hline(y + height, rule)
    return y + height


def _lines(pdf: InvoicePDF, doc: Presentation, y: float) -> float:
    """The lines' table; the last line (with its tiers, resources and its
    group's subtotal) goes onto the next page with the totals rather than
    leave them alone there."""
    y = _table_header(pdf, y)
    summary = _summary_parts(pdf, doc)[3] + 6
    for g, group in enumerate(doc.groups):
        items: list[tuple[str, Any]] = []
        if group.title:
            items.append(("group", group.title))
        for row in group.rows:
            main = [[_Run(str(row.number), 8.5, False, MUTED)],
                    [_Run(row.description)] + [_Run(n, 7, False, MUTED) for n in row.notes + row.explains],
                    [_Run(row.quantity)] + ([_Run(row.human, 7, False, MUTED)] if row.human else []),
                    [_Run(row.unit_price)] + ([_Run(row.per, 7, False, MUTED)]
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
            items.append(("subtotal", [[], [_Run(f"{doc.label('subtotal')} {group.title}", 9, True)], [], [],
                                       [_Run(group.subtotal, 9, True)]]))
        last = max((i for i, (kind, _) in enumerate(items) if kind == "line"), default=-1) \
            if g == len(doc.groups) - 1 else -1
        for i, (kind, content) in enumerate(items):
            if i == last and y > TOP + 25:
                tail = sum(_row_cells(c, pdf)[1] - (PAD if k == "tier" else 0) for k, c in items[i:])
                if y + tail + summary > BOTTOM and tail + summary <= BOTTOM - 30:
                    y = _table_header(pdf, pdf.new_page())
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


#: the VAT breakdown's columns: (label key, width in mm, right-aligned)
TAX_COLUMNS = (("category", 32.0, False), ("rate", 11.0, True), ("taxable", 22.0, True), ("vat", 15.0, True))


def _summary_parts(pdf: InvoicePDF, doc: Presentation) -> tuple[list[Any], list[Any], list[tuple[_Run, str]], float]:
    """The totals' rows, the VAT breakdown's cells, what goes under it (the
    exemption sentence, then the payment notes) and the height the summary
    needs."""
    tax_w, tot_w = 80.0, 92.0
    rows = []
    for total in doc.totals:
        big = total.kind in ("total", "due")
        size = {"total": 10.5, "due": 11.5}.get(total.kind, 9)
        label = pdf.block([_Run(total.label, size, big, WHITE if total.kind == "due" else INK)]
                          + ([_Run(total.note, 7, False, MUTED)] if total.note else []), tot_w - 36)
        amount = pdf.block([_Run(total.amount, size, big, WHITE if total.kind == "due" else INK)], 30)
        rows.append((total.kind, label, amount, max(pdf.height(label), pdf.height(amount)) + (4.6 if big else 2.6)))
    tax = doc.tax
    values = (f"{tax.category} ({tax.code})", tax.rate, tax.taxable, tax.amount)
    cells = [pdf.block([_Run(v, 7.5)], width - 1) for v, (_, width, _) in zip(values, TAX_COLUMNS)]
    under = pdf.block([_Run(doc.label("exemption"), 7.5)], tax_w) if tax.reason else []
    if under and doc.notes:
        under.append((_Run(" ", 4), " "))  # a gap between the reason and the notes
    # the payment notes go under the VAT breakdown, beside the totals
    under += pdf.block([_Run(n, 8.5) for n in doc.notes], tax_w) if doc.notes else []
    left = 11 + max(pdf.height(c) for c in cells) + 1.5 + pdf.height(under)
    return rows, cells, under, max(sum(r[3] for r in rows), left)


def _summary(pdf: InvoicePDF, doc: Presentation, y: float) -> float:
    tax_w, tot_w = 80.0, 92.0
    tot_x = RIGHT - tot_w
    rows, cells, under, needed = _summary_parts(pdf, doc)
    if y + needed > BOTTOM:
        y = pdf.new_page()
    # VAT breakdown
    yy = y
    heading = doc.label("vat_breakdown").upper()
    pdf.draw([(_Run(heading, 6.5, True, MUTED), heading)], LEFT, yy, tax_w)
    yy += 5
    x = LEFT
    for (key, width, right), cell in zip(TAX_COLUMNS, cells):
        label = doc.label(key)
        pdf.draw([(_Run(label, 7, False, MUTED), label)], x, yy, width - 1, right=right)
        pdf.draw(cell, x, yy + 5, width - 1, right=right)
        x += width
    pdf.hline(yy + 4, RULE, 0.2, LEFT, LEFT + tax_w)
    yy += 6 + max(pdf.height(c) for c in cells) + 1.5
    if under:
        pdf.draw(under, LEFT, yy, tax_w)
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
    return max(y, yy + pdf.height(under)) + 8


def draw(pdf: InvoicePDF, doc: Presentation) -> None:
    """Every page of ``doc`` into ``pdf``."""
    y = _first_page_top(pdf, doc)
    y = _lines(pdf, doc, y)
    _summary(pdf, doc, y)
