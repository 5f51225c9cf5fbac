"""The unit a line is billed in, as the documents and the CLI label it.

A product priced per second, minute, hour or day of a time-weighted meter
bills the meter's unit times that time: ``vCPU-s``, ``GiB-h``; a product
priced per unit bills the meter's unit itself (``GB``). One function, so
that ``hub rate`` and every rendered document say the same.

Pure value code: it must not know the configuration, the store or how a
document is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TIME_UNITS", "unit_label"]

#: seconds in one priced time unit, and the symbol after the meter's unit
TIME_UNITS: Mapping[str, tuple[int, str]] = {
    "second": (1, "s"), "minute": (60, "min"), "hour": (3600, "h"), "day": (86400, "d"),
}


def unit_label(unit: str, meter_unit: str | None) -> str | None:
    """What one unit price buys, from the priced unit (a product's ``per``)
    and the meter's unit: ``vCPU-s``, ``GiB-h``, ``GB``; ``h`` for an hour
    of a meter without a unit; ``None`` for a bare unit."""
    if unit in TIME_UNITS:
        symbol = TIME_UNITS[unit][1]
        return f"{meter_unit}-{symbol}" if meter_unit else symbol
    return meter_unit
