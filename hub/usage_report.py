"""Raw usage of a period per account and meter (``hub usage``).

Set-based SQL: records are clipped to the period (:data:`hub.billable.CLIPPED`)
and aggregated in the database; Python only combines a few integer sums per
(account, meter). Quantities are summed exactly as integers, never as
floats, as the split sums of :mod:`hub.quantities`.

Knows the store's records and the meters; knows nothing of products,
prices or the rating (these are the raw figures, before any granularity or
minimum).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, bindparam, text

from hub.billable import CLIPPED, IN_PERIOD
from hub.config.model import Config
from hub.periods import Period
from hub.quantities import nanos_decimal, split_products, split_sums_nanos

_SUMS = text(f"""
SELECT account, meter, COUNT(*), SUM(secs),
       {split_products("secs")},
       SUM(CASE WHEN start_s >= :p0 THEN qty_units ELSE 0 END),
       SUM(CASE WHEN start_s >= :p0 THEN qty_nanos ELSE 0 END),
       COUNT(DISTINCT resource_id)
FROM (SELECT account, meter, resource_id, qty_units, qty_nanos, start_s, {CLIPPED} AS secs
      FROM usage_records
      WHERE account IN :accounts AND {IN_PERIOD}) AS clipped
GROUP BY account, meter
""").bindparams(bindparam("accounts", expanding=True))

#: the record of each (account, meter) ranked first by :order (max and latest)
_RANKED = """
SELECT account, meter, quantity FROM (
  SELECT account, meter, quantity,
         ROW_NUMBER() OVER (PARTITION BY account, meter ORDER BY {order}) AS rank
  FROM usage_records
  WHERE account IN :accounts AND start_s < :p1 AND {where}
) AS ranked WHERE rank = 1
"""
_MAX = text(_RANKED.format(order="qty_units DESC, qty_nanos DESC",
                           where="(COALESCE(end_s, :run_end) > :p0 OR start_s >= :p0)")
            ).bindparams(bindparam("accounts", expanding=True))
_LATEST = text(_RANKED.format(order="start_s DESC, received_s DESC, id DESC", where="1 = 1")
               ).bindparams(bindparam("accounts", expanding=True))


@dataclass(frozen=True)
class UsageLine:
    """The usage of one account and meter in a period.

    - ``records``: records overlapping the period.
    - ``seconds``: their seconds inside the period (running ones to the
      period's end, or to now while it is open).
    - ``quantity``: the meter's aggregate: unit-seconds (time_weighted),
      total (sum), peak (max), distinct resources (unique) or the last
      value (latest). Before any product's granularity or minimum.
    """

    account: str
    meter: str
    aggregation: str
    unit: str | None
    records: int
    seconds: int
    quantity: Decimal


def usage_lines(engine: Engine, config: Config, period: Period, accounts: Sequence[str] | None = None,
                now: datetime | None = None) -> list[UsageLine]:
    """The period's usage per (account, meter), sorted by account and meter."""
    now_s = int((now or datetime.now(timezone.utc)).timestamp())
    by_tz: dict[str, list[str]] = defaultdict(list)
    for acc in accounts if accounts is not None else list(config.accounts):
        account = config.accounts.get(acc)
        by_tz[account.timezone if account else config.hub.timezone].append(acc)
    out: list[UsageLine] = []
    with engine.connect() as conn, localcontext() as exact:
        if conn.dialect.name == "postgresql":
            # as in the rating: JIT spent seconds compiling each query over
            # every record (an IN list of thousands of accounts); LOCAL: this
            # transaction only
            conn.execute(text("SET LOCAL jit = off"))
        exact.prec = 60  # 10^15 x 2.7e6 s x many records, to 1e-9: far below 60 digits
        for tz, ids in by_tz.items():
            p0, p1 = period.epoch_bounds(ZoneInfo(tz))
            params = {"p0": p0, "p1": p1, "run_end": min(now_s, p1), "accounts": ids}
            picked = {}
            for query in (_MAX, _LATEST):
                picked[query] = {(a, m): Decimal(q) for a, m, q in conn.execute(query, params)}
            for acc, meter_name, n, secs, u_hi, u_lo, hi, lo, s_units, s_nanos, distinct in conn.execute(_SUMS, params):
                meter = config.meters.get(meter_name)
                aggregation = meter.aggregation if meter else "time_weighted"
                if aggregation == "time_weighted":
                    quantity = nanos_decimal(split_sums_nanos(int(u_hi), int(u_lo), int(hi), int(lo)))
                elif aggregation == "sum":
                    quantity = nanos_decimal(split_sums_nanos(0, int(s_units), 0, int(s_nanos)))
                elif aggregation == "max":
                    quantity = picked[_MAX].get((acc, meter_name), Decimal(0))
                elif aggregation == "unique":
                    quantity = Decimal(distinct)
                else:
                    quantity = picked[_LATEST].get((acc, meter_name), Decimal(0))
                out.append(UsageLine(acc, meter_name, aggregation, meter.unit if meter else None, int(n),
                                     int(secs or 0), quantity.normalize() if quantity else Decimal(0)))
    return sorted(out, key=lambda u: (u.account, u.meter))
