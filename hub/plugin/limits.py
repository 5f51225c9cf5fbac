"""What the store can hold of a usage record's text, the same on every
backend.

PostgreSQL refuses what SQLite stores: a text over its column's size
(``VARCHAR(500)``), a NUL character, a lone surrogate (not UTF-8). A value
either backend would refuse is refused at the input, the same way on both,
so that a bad row is quarantined with the limit it broke instead of failing
its whole batch on one backend only:

- :data:`TEXT_LIMITS`: the most characters of each text field of a record
  (the sizes of ``usage_records``' columns in :mod:`hub.store.tables`;
  labels are JSON in a text column and have no size limit);
- :func:`text_error`: what keeps one value out of the store, worded as
  quarantine shows it; :func:`column_text_error` the same for a column at
  once (one pass in C when every value is fine);
- :func:`storable`: a text made safe to keep in quarantine as it is shown
  (a NUL becomes ``\\x00``), for the raw text of a row refused for it.

Sources check with it to quarantine a row with its raw text; the pull stage
(:mod:`hub.ingest`) checks every record with it whatever the source did.
"""

from __future__ import annotations

from collections.abc import Iterable

#: the most characters of each text field of a usage record
TEXT_LIMITS = {"record_id": 500, "account": 200, "resource_id": 500, "meter": 200, "unit": 100}

_NUL = "\x00"


def text_error(field: str, value: str) -> str | None:
    """What keeps ``value`` (a record's ``field``; ``label 'x'`` for a
    label) out of the store, or ``None``."""
    if _NUL in value:
        return f"{field}: holds a NUL character (byte 0), which cannot be stored"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{field}: is not valid Unicode (a lone surrogate), which cannot be stored"
    limit = TEXT_LIMITS.get(field)
    if limit is not None and len(value) > limit:
        return f"{field}: {len(value)} characters, over the limit of {limit}"
    return None


def record_text_errors(texts: Iterable[tuple[str, str | None]],
                       labels: Iterable[tuple[str, str]] = ()) -> list[str]:
    """:func:`text_error` of each (field, value) of a record's ``texts`` (a
    None value is not checked) and of each label's key and value: what of
    the record no backend could store, in the record's order."""
    errors = [error for field, value in texts if isinstance(value, str) and (error := text_error(field, value))]
    for key, value in labels:
        if error := text_error(f"label {key!r}", key) or text_error(f"label {key!r}", value):
            errors.append(error)
    return errors


def column_text_error(field: str, values: Iterable[str]) -> bool:
    """Whether some value of a column of strings has a :func:`text_error`."""
    values = list(values)
    if not values:
        return False
    joined = "".join(values)
    if _NUL in joined:
        return True
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            return True
    limit = TEXT_LIMITS.get(field)
    return limit is not None and len(joined) > limit and max(map(len, values)) > limit


def storable(text: str) -> str:
    """``text`` as a store keeps it on every backend: a NUL shown as
    ``\\x00``, what is not UTF-8 as its escape."""
    text = text.replace(_NUL, "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
