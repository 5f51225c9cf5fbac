"""What no value of hub.toml may be: a text with a control character, a
float that is not finite (TOML's ``inf``, ``nan``), an integer beyond 64 bits.

Names, addresses, e-mail addresses, subjects and numbers end up in mail
headers, file names and documents, where a line break starts a new header
or a new line a reader never wrote: so no value of hub.toml (the hub's
tables and the plugin instances' options alike) may hold a control
character (Unicode category Cc: U+0000 to U+001F, U+007F to U+009F) or a
line or paragraph separator (U+2028, U+2029). The free texts that are
written on several lines (:data:`MULTILINE_KEYS`: a description, an e-mail
template) may hold line breaks (LF) and tabs, nothing else.

Numbers: a TOML ``inf`` or ``nan`` and an integer outside -2^63..2^63-1 fit
no store column, socket timeout or date; a key's own bounds are in its
schema.

It walks the merged document and names each value's key; it must not know
what a table means.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from hub.config.document import Document
from hub.config.errors import ConfigError

#: the integers any value of hub.toml may be (64-bit signed)
LARGEST_INTEGER = 2**63 - 1

#: keys whose text may span lines: LF and tab allowed (the e-mail exporter
#: folds what its subject templates give onto one line, tests/test_email_exporter.py)
MULTILINE_KEYS = frozenset({"description", "body", "reminder_body", "subject", "reminder_subject"})
_SEPARATORS = frozenset("\u2028\u2029")
_NAMES = {"\n": "a line feed", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL",
          "\u2028": "a line separator", "\u2029": "a paragraph separator"}


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` a configuration value may not hold,
    in words (``a line feed (U+000A)``), or None."""
    for c in value:
        if (unicodedata.category(c) == "Cc" or c in _SEPARATORS) and not (multiline and c in "\n\t"):
            return f"{_NAMES.get(c, 'a control character')} (U+{ord(c):04X})"
    return None


def control_character_errors(doc: Document) -> list[ConfigError]:
    """Every text of the document holding a control character, every
    number not finite or beyond 64 bits, by key."""
    errors: list[ConfigError] = []
    _walk(doc, doc.data, [], errors)
    return errors


def _walk(doc: Document, value: Any, path: list[Any], errors: list[ConfigError]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(doc, item, [*path, key], errors)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(doc, item, [*path, i], errors)
    elif isinstance(value, float) and not math.isfinite(value):
        file, table, key = doc.locate(path)
        errors.append(ConfigError(file, table, key, f"{value} is not a finite number"))
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > LARGEST_INTEGER:
        file, table, key = doc.locate(path)
        errors.append(ConfigError(file, table, key, f"{value} is too large: the hub accepts integers of at most "
                                                    f"{LARGEST_INTEGER}"))
    elif isinstance(value, str):
        last = next((p for p in reversed(path) if isinstance(p, str)), "")
        found = control_character(value, multiline=last in MULTILINE_KEYS)
        if found:
            file, table, key = doc.locate(path)
            where = "" if last in MULTILINE_KEYS else "; write it on one line"
            errors.append(ConfigError(file, table, key, f"{value!r} holds {found}, which it may not{where}"))
