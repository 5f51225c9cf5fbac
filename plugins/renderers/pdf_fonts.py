"""The pdf renderer's fonts: the regular and bold TTF files, and subsets of
them prepared once so that each document embeds the smallest font that has
all its characters (:class:`Fonts`, :data:`SUBSETS`), with the advance
widths the layout measures text by (:class:`Face`). A document with a
character the fonts lack is refused (:class:`MissingGlyphs`).

This module must not know invoices or the layout: it answers "which font
files, and how wide is this text".
"""

from __future__ import annotations

import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LATIN = ((0x20, 0x7E), (0xA0, 0x17F), (0x2002, 0x200B), (0x2010, 0x2026), (0x202F, 0x2030), (0x2039, 0x203A),
          (0x20AC, 0x20AC), (0x2122, 0x2122), (0x2192, 0x2192), (0x2212, 0x2212), (0x2248, 0x2248))
#: the prepared subsets of the fonts, smallest first: a document uses the
#: first that has all its characters, else the whole font
SUBSETS = (
    ("latin", _LATIN),
    ("european", _LATIN + ((0x180, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x1E00, 0x1EFF))),
)


class MissingGlyphs(ValueError):
    """The invoice has characters the fonts cannot print (named in the message)."""


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
