"""The billable-seconds rule: how many seconds a usage record bills in a
period (docs/billing-rules.md, "Granularity and minimum").

Per record and product (granularity g, minimum m) and period ``[p0, p1)``:

- its seconds in the period: the record clipped to ``[p0, p1)``; a running
  record (no end yet) runs to ``min(now, p1)``;
- rounded up to the granularity: ``ceil(seconds / g) * g`` (0 stays 0);
- a finished record whose billable seconds in total, over every period it
  touches, each rounded on its own, are fewer than m is topped up to m,
  in the period that holds its start. A running record gets no top-up.

This module is the rule's one home: :func:`billable_in_period` is the
reference, in Python, and the SQL renderings below are what the rating,
``hub trace``, ``hub reconcile`` and the writers' rollup upkeep run
(tests/test_rating_billable.py checks them against the reference on random
records, on SQLite and PostgreSQL). The SQL comes in two spellings of the
same arithmetic: with bound parameters (``:g``, ``:m``, ``:b1``...), for
the queries that read one product's records and report each record's
seconds, and with the integers written in, for the scans that rate many
products at once and for the rollup deltas.

Why a module of its own, below both the rating and the store: the store's
rollup upkeep (:mod:`hub.store.rollups`) must compute what a changed record
bills exactly as the rating does, and the store may not import the stages.
So the rule lives here, pure: it imports nothing of the hub, knows no table
but the columns of a usage record (``start_s``, ``end_s``), no connection,
no catalog, no period arithmetic (the caller gives the bounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------
# the reference


def billable_seconds(seconds: int, granularity: int) -> int:
    """Billable seconds of a record in a period: ``ceil(seconds / g) * g``
    for ``seconds > 0``, else 0 (762 s bills 762 s at g = 1, 1200 s at g = 600)."""
    if granularity < 1:
        raise ValueError(f"granularity must be at least 1 second, not {granularity}")
    if seconds <= 0:
        return 0
    return -(-seconds // granularity) * granularity


def with_minimum(total_billable: int, minimum: int, finished: bool) -> int:
    """A record's billable seconds in total after the minimum ``m``.

    A finished record whose billable seconds in total (after granularity)
    are fewer than ``m`` is billed ``m``; a running record gets no top-up
    until it finishes. The top-up (:func:`minimum_top_up`) falls into the
    period that holds the record's start (:func:`billable_in_period`).
    """
    return minimum if finished and total_billable < minimum else total_billable


def minimum_top_up(total_billable: int, minimum: int, finished: bool) -> int:
    """The seconds :func:`with_minimum` adds (0 when none)."""
    return with_minimum(total_billable, minimum, finished) - total_billable


@dataclass(frozen=True)
class PeriodSeconds:
    """What one record bills in one period.

    - ``seconds``: its seconds inside the period;
    - ``rounded``: those rounded up to the granularity;
    - ``topup``: what the minimum adds here (only in the period of its start).
    """

    seconds: int
    rounded: int
    topup: int

    @property
    def billed(self) -> int:
        return self.rounded + self.topup


def billable_in_period(start: int, end: int | None, bounds: Sequence[int], now: int,
                       granularity: int = 1, minimum: int = 0) -> PeriodSeconds:
    """What the record ``[start, end)`` (``end`` None while it runs) bills
    in the period ``[bounds[0], bounds[1])``, at the clock ``now``.

    ``bounds[2:]`` are the ends of the periods after it, in order: the
    record's piece in each is rounded up on its own for its total. They
    must reach past the record's end or at least ``minimum`` seconds past
    the period (then the pieces they hold already make the minimum); what
    lies beyond the last counts as one more piece."""
    p0, p1, *later = bounds
    stop = min(now, p1) if end is None else end
    seconds = max(0, min(stop, p1) - max(start, p0))
    rounded = billable_seconds(seconds, granularity)
    topup = 0
    if end is not None and p0 <= start < p1 and minimum > 0:
        after, lo = 0, p1
        for hi in [*later, None]:
            if end <= lo:
                break
            after += billable_seconds((end if hi is None else min(end, hi)) - lo, granularity)
            if hi is None:
                break
            lo = hi
        topup = minimum_top_up(rounded + after, minimum, finished=True)
    return PeriodSeconds(seconds, rounded, topup)


# --------------------------------------------------------------------------
# SQL: the columns start_s, end_s (NULL while running) of a usage record;
# the period [:p0, :p1); a running record runs to :run_end = min(now, :p1)


#: the records that count in the period: those that overlap it, and those
#: that start in it even with no seconds (a minimum tops them up)
IN_PERIOD = "start_s < :p1 AND (COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)"

#: a record's seconds inside the period (in CASEs: every backend)
CLIPPED = """
    CASE WHEN (CASE WHEN COALESCE(end_s, :run_end) < :p1 THEN COALESCE(end_s, :run_end) ELSE :p1 END)
              - (CASE WHEN start_s > :p0 THEN start_s ELSE :p0 END) > 0
         THEN (CASE WHEN COALESCE(end_s, :run_end) < :p1 THEN COALESCE(end_s, :run_end) ELSE :p1 END)
              - (CASE WHEN start_s > :p0 THEN start_s ELSE :p0 END)
         ELSE 0 END
"""

#: with bound parameters: per record, ``secs`` in the period, ``inside``
#: rounded up to ``:g``, ``topup`` up to ``:m`` (see :func:`bound_records_sql`)
_BOUND_RECORDS = """
SELECT {cols}, secs, inside,
       CASE WHEN end_s IS NOT NULL AND start_s >= :p0 AND inside + after < :m
            THEN :m - inside - after ELSE 0 END AS topup
FROM (
  SELECT {cols}, secs, {inside} AS inside,
         {after} AS after
  FROM (SELECT {cols}, {clipped} AS secs FROM {scope}) AS clipped
) AS pieces
"""


def _bound_rounded(secs: str) -> str:
    return f"CASE WHEN {secs} > 0 THEN ({secs} + :g - 1) / :g * :g ELSE 0 END"


def _bound_after(pieces: int) -> str:
    """A finished record's billable seconds in the ``pieces`` periods after
    this one, each rounded up on its own; their ends are ``:b1``... (the
    periods must reach at least the minimum past ``:p1``)."""
    if pieces == 0:
        return "0"
    bounds = [":p1"] + [f":b{k}" for k in range(1, pieces + 1)]
    terms = []
    for lo, hi in zip(bounds, bounds[1:]):
        secs = f"(CASE WHEN end_s < {hi} THEN end_s ELSE {hi} END) - {lo}"
        terms.append(f"CASE WHEN end_s > {lo} THEN ({secs} + :g - 1) / :g * :g ELSE 0 END")
    return "CASE WHEN end_s IS NULL THEN 0 ELSE " + " + ".join(terms) + " END"


def bound_records_sql(columns: str, scope: str, pieces: int) -> str:
    """A query of the records ``SELECT ... FROM {scope}`` (a table and its
    ``WHERE``) with ``columns``, then ``secs``, ``inside`` and ``topup``:
    what each bills is ``inside + topup`` (:class:`PeriodSeconds`'s
    ``seconds``, ``rounded`` and ``topup``). Parameters: ``:p0``, ``:p1``,
    ``:run_end``, ``:g``, ``:m`` and the ``pieces`` ends ``:b1``... of the
    periods after this one."""
    return _BOUND_RECORDS.format(cols=columns, inside=_bound_rounded("secs"), clipped=CLIPPED, scope=scope,
                                 after=_bound_after(pieces))


#: per dialect: the smaller and the larger of two values
LEAST_GREATEST = {"sqlite": ("MIN", "MAX"), "postgresql": ("LEAST", "GREATEST")}


def billed_sql(dialect: str, g: int, m: int, bounds: Sequence[int]) -> str:
    """A record's billed seconds in the period (``inside + topup`` of
    :func:`bound_records_sql`) with granularity ``g``, minimum ``m`` and the
    ends ``bounds`` of the periods after it (needed with a minimum only),
    the integers written into the expression; parameters ``:p0``, ``:p1``,
    ``:run_end``."""
    least, greatest = LEAST_GREATEST.get(dialect, LEAST_GREATEST["postgresql"])
    g, m = int(g), int(m)
    secs = f"{greatest}({least}(COALESCE(end_s, :run_end), :p1) - {greatest}(start_s, :p0), 0)"

    def up(x: str) -> str:
        return x if g == 1 else f"(({x} + {g - 1}) / {g} * {g})"

    inside = up(secs)
    if m <= 0:
        return inside

    los = [":p1"] + [str(int(b)) for b in bounds]
    after = " + ".join(f"CASE WHEN end_s > {lo} THEN {up(f'{least}(end_s, {hi}) - {lo}')} ELSE 0 END"
                       for lo, hi in zip(los, los[1:])) or "0"
    return (f"{inside} + CASE WHEN end_s IS NOT NULL AND start_s >= :p0 AND {inside} + {after} < {m} "
            f"THEN {m} - {inside} - ({after}) ELSE 0 END")
