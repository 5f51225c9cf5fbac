"""Parsing usage input for sources: timestamps and quantities, with the
hub's rules and its error wording.

A source that reads text (CSV, JSON, an API's answer) parses its timestamps
and quantities with these functions, so that a row it refuses says what the
hub itself would say, and a row it accepts is one the hub stores exactly:

- timestamps: RFC 3339 in, whole UTC epoch seconds out (fractions floored;
  a naive time only in the source's declared time zone):
  :func:`parse_timestamp` for one, :class:`TimestampParser` for many (it
  remembers the minutes it has seen, and parses a column at once with
  :meth:`TimestampParser.column`), :func:`utc_z_column` for a column of
  ``YYYY-MM-DDTHH:MM:SSZ`` texts in numpy, :func:`format_epoch` back to text;
- quantities: a non-negative decimal with at most 9 decimal places and less
  than 10**15: :func:`parse_quantity` to a ``Decimal``,
  :func:`quantity_parts` to the ``(units, nanos)`` integers of
  :class:`~hub.plugin.types.UsageColumns`, :func:`plain_parts_column` for a
  column of plain decimals in numpy, :func:`quantity_error` for a value at
  hand.

Every parser returns ``(value, None)`` or ``(None, error)``, never raises on
bad input; the error texts are the ones quarantine shows.

This module is the plugins' door to :mod:`hub.timestamps` and
:mod:`hub.quantities`, the homes of these rules (docs/billing-rules.md); it
must not know the store, the stages or any source.
"""

from hub.quantities import parse_quantity, plain_parts_column, quantity_error, quantity_parts
from hub.timestamps import TimestampParser, format_epoch, parse_timestamp, utc_z_column

__all__ = [
    "TimestampParser", "format_epoch", "parse_quantity", "parse_timestamp", "plain_parts_column", "quantity_error",
    "quantity_parts", "utc_z_column",
]
