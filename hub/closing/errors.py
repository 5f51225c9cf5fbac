"""The close stage's error and clock.

:class:`InvoicingError` is what every operation of the stage raises when
the operator must fix something first (a missing seller, an unknown
invoice, a payment larger than what is due); it must not know any of them.
"""

from __future__ import annotations

from datetime import datetime, timezone


class InvoicingError(Exception):
    """Something the operator must fix before an invoice can be made; the
    message says what and where."""


def utcnow() -> datetime:
    """Now, as the stage records it."""
    return datetime.now(timezone.utc)
