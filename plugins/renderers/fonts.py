"""TrueType fonts for fpdf2 documents, parsed once per process.

``FPDF.add_font`` parses the font file again for every document: fontTools
reads its tables, and fpdf2 builds the font's descriptor, its widths per
character and its glyph ids (about 2.7 ms per document for the pdf
renderer's two fonts, a tenth of a 20-line invoice). :func:`add_font` does
that once per font file and style and gives each document a copy of the
result (:class:`fpdf.fonts.TTFFont`): what fpdf2's own ``__deepcopy__``
of a font shares stays shared (names, metrics, the character map), what a
document changes is its own (widths, glyph ids, missing glyphs, the
descriptor, the subset of glyphs used). Each copy gets a fontTools font of
its own, read from the file's bytes kept in memory with the same tables
decompiled as ``add_font`` decompiles, since fpdf2 subsets that font in
place when it writes the document: the embedded subset, and so the PDF,
are the same bytes as with ``add_font``.

Fonts this does not cover (OpenType CFF, WOFF, variable and colour fonts,
a font added twice) go through ``FPDF.add_font``.

This module must not know invoices, the layout or which fonts the renderer
picks: it only makes adding a font file cheap.
"""

from __future__ import annotations

import copy
import io
import threading
from dataclasses import dataclass
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import CORE_FONTS, SubsetMap, TTFFont


@dataclass(frozen=True)
class _Parsed:
    """A font file's bytes and the fpdf2 font made from them once."""

    data: bytes
    font: TTFFont | None  # None: not a font this module copies


_parsed: dict[tuple[str, str, str, int, int], _Parsed] = {}
_lock = threading.Lock()


def add_font(pdf: FPDF, family: str, style: str, path: Path) -> None:
    """``pdf.add_font(family, style, path)``, the file parsed once per process."""
    style = "".join(sorted(style.upper()))
    fontkey = f"{family.lower()}{style}"
    parsed = _parse(family, style, Path(path))
    if parsed.font is None or fontkey in pdf.fonts or fontkey in CORE_FONTS:
        pdf.add_font(family, style, path)
        return
    pdf.fonts[fontkey] = _copy(parsed, len(pdf.fonts) + 1)


def _parse(family: str, style: str, path: Path) -> _Parsed:
    stat = path.stat()
    key = (str(path.resolve()), family.lower(), style, stat.st_mtime_ns, stat.st_size)
    with _lock:
        parsed = _parsed.get(key)
        if parsed is None:
            data = path.read_bytes()
            font: TTFFont | None = TTFFont(FPDF(), path, f"{family.lower()}{style}", style)
            if (font.is_cff or font.is_compressed or font.is_symbol or font.color_font is not None  # type: ignore[union-attr]
                    or path.suffix.lower() != ".ttf"):
                font = None
            parsed = _parsed[key] = _Parsed(data, font)
    return parsed


def _copy(parsed: _Parsed, index: int) -> TTFFont:
    template = parsed.font
    assert template is not None
    font = copy.copy(template)
    font.i = index
    font.ttfont = _fonttools_font(parsed.data)
    font.desc = copy.copy(template.desc)
    font.cw = copy.copy(template.cw)  # a defaultdict: reading a missing character adds it
    font.glyph_ids = dict(template.glyph_ids)
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None  # noqa: SLF001 - fpdf2's HarfBuzz font, made when first needed
    font.subset = SubsetMap(font)
    return font


def _fonttools_font(data: bytes) -> ttLib.TTFont:
    """The font of ``data`` as ``TTFFont.__init__`` leaves it: lazily read,
    with the same tables decompiled (a decompiled table is compiled again
    when the subset is saved, an untouched one copied)."""
    ttfont = ttLib.TTFont(io.BytesIO(data), recalcTimestamp=False, fontNumber=0, lazy=True)
    ttfont["head"]
    if "glyf" in ttfont:
        ".notdef" in ttfont["glyf"]  # noqa: B015 - decompiles glyf (and loca), as TTFFont does
    ttfont["hmtx"]
    ttfont["OS/2"]
    ttfont["post"]
    ttfont["hhea"]
    cmap = ttfont.getBestCmap()
    for glyph in cmap.values():
        ttfont.getGlyphID(glyph)
    ttfont["name"]
    return ttfont
