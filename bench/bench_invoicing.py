#!/usr/bin/env python3
"""Benchmark: closing a month into invoices for 10,000 accounts, through the hub's real path.

Generates a deterministic (seeded) workspace: a ``hub.toml`` with
``[seller]``, ``[tax.rates]``, ``[invoicing]``, the six meters and products
of ``bench_rating.py`` (per second, ``vcpu`` and ``memory`` graduated),
``config/accounts.toml`` with N accounts in 11 countries and 12 time zones
(domestic VAT, EU reverse charge with valid VAT ids, EU consumers at their
own rate, export, exempt), ``config/billing.toml`` with credits
(promotional, prepaid) and discounts (percent on a product or on every
line, fixed), and a month (2025-03) of usage as one CSV (a few records per
account and product, some still running). While generating, it computes
every invoice independently (exact decimals, docs/billing-rules.md)
into ``expected.json``.

Then, per backend, each step in its own subprocess (so each peak RSS is its
own):

1. ``hub pull``'s path (``bench_import.run_import``: pull, re-pull, count),
   plus a few manual charges (``hub charge add``'s path);
2. closing 2025-03 for every account, as ``hub invoice --period 2025-03``
   does (``Hub.open`` -> ``close_period``), timed: invoices/s, seconds, peak
   RSS; then the same close again (everything issued: the idempotent no-op),
   timed; then a full ``rate()`` of the month (``hub rate``'s path);
3. with ``--drafts``, on a second fresh store: drafts for every account
   (``hub invoice --draft``), then issuing them, each timed.

After each close it checks: exactly N invoices, numbered
INV-2025-000001..N without a gap and in issue order, each invoice's
subtotal, discounts, credits, tax (category and rate), total and amount due
equal to the independent computation, each line's amount too, the sum of
totals likewise, and the sum of the usage lines equal to ``rate()``'s.
Any difference is printed, then FAILED, exit 1.

    python3 bench/bench_invoicing.py --accounts 1000                   # a quick run
    python3 bench/bench_invoicing.py                                   # 10,000 accounts
    python3 bench/bench_invoicing.py --workdir /tmp/ib --skip-generate --backends sqlite
    python3 bench/bench_invoicing.py --workdir /tmp/ib --profile       # cProfile of closing, SQLite

See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, localcontext
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo

# the PostgreSQL schema helpers, the RSS probes, the pull path, the code
# state, and the catalog, month and account names of the rating benchmark
# (this directory is on sys.path when a script in it runs)
from bench_import import (
    POSTGRES,
    _maxrss_mb,
    code_state,
    pg_create_schema,
    pg_drop_schema,
    postgres_unreachable,
)
from bench_rating import PERIOD, PRODUCTS, _hwm_mb, account_id, print_table
from bench_rating import write_config as write_catalog_config

# --- the month and the closing ----------------------------------------------
UTC = timezone.utc
#: usage lies in [DATA_FROM, DATA_TO): inside March 2025 in every time zone
#: below (Auckland's March starts on 28 February 11:00 UTC, Los Angeles'
#: ends on 1 April 07:00 UTC), so clipping is by the period's bounds only
#: for running records, which run to their account's period end
DATA_FROM = datetime(2025, 3, 2, tzinfo=UTC)
DATA_TO = datetime(2025, 3, 31, tzinfo=UTC)
#: the clock of the closing: every account's March has ended plus the 1 day grace
CLOSE_NOW = datetime(2025, 4, 3, tzinfo=UTC)
ISSUE_DATE = date(2025, 4, 2)
NUMBER_FORMAT = "INV-{year}-{seq:06d}"
SOURCE = "usage"

# --- the accounts -------------------------------------------------------------
SELLER_COUNTRY = "DE"
TAX_RATES = {"DE": "19", "FR": "20", "AT": "20", "IT": "22", "NL": "21", "BE": "21"}
#: (kind, country, time zone, share of accounts)
MIX = (
    ("domestic", "DE", "Europe/Berlin", 0.35),
    ("domestic_vat", "DE", "Europe/Berlin", 0.05),  # a German business: still 19 %
    ("reverse_charge", "FR", "Europe/Paris", 0.08),
    ("reverse_charge", "NL", "Europe/Amsterdam", 0.06),
    ("reverse_charge", "BE", "Europe/Brussels", 0.06),
    ("eu_consumer", "FR", "Europe/Paris", 0.04),
    ("eu_consumer", "AT", "Europe/Vienna", 0.03),
    ("eu_consumer", "IT", "Europe/Rome", 0.03),
    ("export", "US", "America/New_York", 0.08),
    ("export", "US", "America/Los_Angeles", 0.04),
    ("export", "CH", "Europe/Zurich", 0.05),
    ("export", "GB", "Europe/London", 0.04),
    ("export", "NZ", "Pacific/Auckland", 0.02),
    ("export", "JP", "Asia/Tokyo", 0.02),
    ("exempt", "DE", "Europe/Berlin", 0.05),
)
EXEMPTION_REASON = "Exempt under section 4 no. 22 UStG"

# --- the usage ----------------------------------------------------------------
#: (size class, share, vCPU sizes, GiB sizes)
SIZES = (
    ("small", 0.70, ("0.25", "0.5", "1", "2"), ("0.5", "0.931322575", "1", "2", "4")),
    ("medium", 0.25, ("2", "4", "8"), ("4", "8", "16", "32")),
    ("large", 0.05, ("16", "32", "64"), ("64", "128", "256")),
)
#: probability that an account uses each product beyond vcpu and memory
OPTIONAL = {"block": 0.6, "ip": 0.5, "lb": 0.2, "gpu": 0.1}
RUNNING_SHARE = 0.05
MANUAL_SHARE = 0.01
CENT = Decimal("0.01")


# ---------------------------------------------------------------------------
# VAT ids: valid (format and check digits, as python-stdnum checks them),
# one per account


def vat_id(country: str, i: int) -> str:
    """A valid VAT id of ``country`` numbered after account ``i``."""
    n = 10_000_000 + 10 * i
    if country == "DE":  # 8 digits + ISO 7064 mod 11,10
        from stdnum.iso7064 import mod_11_10

        body = f"{n:08d}"
        return f"DE{body}{mod_11_10.calc_check_digit(body)}"
    if country == "FR":  # key + SIREN (8 digits + Luhn)
        from stdnum import luhn

        siren = f"{n:08d}" + luhn.calc_check_digit(f"{n:08d}")
        return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"
    if country == "BE":  # 0 + 7 digits + 97 - (8 digits mod 97)
        body = f"0{n % 10_000_000:07d}"
        return f"BE{body}{97 - int(body) % 97:02d}"
    if country == "NL":  # 8 digits + the 11-test digit, B01
        while True:
            body = f"{n:08d}"
            check = sum((9 - k) * int(c) for k, c in enumerate(body)) % 11
            if check < 10:
                return f"NL{body}{check}B01"
            n += 1
    raise ValueError(country)


# ---------------------------------------------------------------------------
# the independent computation (exact decimals; docs/billing-rules.md)


def _round(value: Decimal) -> Decimal:
    """Half-up to the cent: the one rounding (not trapped as inexact)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=Context(prec=80))


def _midnight(day: str, tz: ZoneInfo, until: bool = False) -> datetime:
    """The midnight starting ``day`` (``until``: ending it) in ``tz``, UTC."""
    d = date.fromisoformat(day) + timedelta(days=1 if until else 0)
    return datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(UTC)


def _price(product: str, q: Decimal) -> Decimal:
    """The exact amount of ``q`` unit-seconds of ``product`` (tiers from 0)."""
    tiers = next(t for p, _m, _u, t in PRODUCTS if p == product)
    amount, lower = Decimal(0), Decimal(0)
    for up_to, price in tiers:
        upper = Decimal(up_to) if up_to else None
        if q <= lower:
            break
        part = (min(q, upper) if upper is not None else q) - lower
        amount += part * Decimal(price)
        if upper is None:
            break
        lower = upper
    return amount


def expected_invoice(acc: dict, usage: dict[str, Decimal], manual: list[str], discounts: list[dict],
                     credits: list[dict]) -> dict:
    """What ``acc``'s invoice for March must say, from its unit-seconds per
    product, its manual charges and its configured discounts and credits."""
    tz = ZoneInfo(acc["timezone"])
    p0, p1 = _midnight("2025-03-01", tz), _midnight("2025-04-01", tz)
    lines = [(product, _round(_price(product, q))) for product, q in sorted(usage.items()) if q > 0]
    lines += [("manual", Decimal(a)) for a in manual]
    subtotal = sum((a for _p, a in lines), Decimal(0))

    def applies(d: dict) -> bool:
        start = _midnight(d["valid_from"], tz) if "valid_from" in d else None
        end = _midnight(d["valid_until"], tz, until=True) if "valid_until" in d else None
        return (start is None or start < p1) and (end is None or p0 < end)

    left = [a for _p, a in lines]
    for d in discounts:
        if "percent" in d and applies(d):
            for k, (product, a) in enumerate(lines):
                if d.get("product") in (None, product):
                    left[k] -= min(_round(a * Decimal(d["percent"]) / 100), left[k])
    remaining = sum(left, Decimal(0))
    for d in discounts:  # fixed, invoice-wide only here
        if "amount" in d and applies(d):
            remaining -= min(Decimal(d["amount"]), remaining)
    discount = subtotal - remaining

    def usable(c: dict) -> bool:
        granted = _midnight(c["granted"], tz) if "granted" in c else None
        expires = _midnight(c["expires"], tz, until=True) if "expires" in c else None
        # docs/billing-rules.md, Credits: a grant pays a period that ends before it expires
        return (granted is None or granted < p1) and (expires is None or expires > p1)

    balance = {kind: sum((Decimal(c["amount"]) for c in credits if c["kind"] == kind and usable(c)), Decimal(0))
               for kind in ("promotional", "prepaid")}
    promotional = min(balance["promotional"], remaining)
    taxable = remaining - promotional
    category, rate = {"domestic": ("S", TAX_RATES[SELLER_COUNTRY]), "domestic_vat": ("S", TAX_RATES[SELLER_COUNTRY]),
                      "reverse_charge": ("AE", "0"), "eu_consumer": ("S", TAX_RATES.get(acc["country"], "?")),
                      "export": ("G", "0"), "exempt": ("E", "0")}[acc["kind"]]
    tax = _round(taxable * Decimal(rate) / 100)
    total = taxable + tax
    prepaid = min(balance["prepaid"], total)
    return {"lines": {p: str(a) for p, a in lines}, "subtotal": str(subtotal), "discount_total": str(discount),
            "promotional_credit": str(promotional), "taxable_amount": str(taxable), "category": category,
            "rate": rate, "tax": str(tax), "total": str(total), "prepaid_applied": str(prepaid),
            "amount_due": str(total - prepaid)}


# ---------------------------------------------------------------------------
# the workspace


def _pick(rng: random.Random, table: tuple) -> tuple:
    u, acc = rng.random(), 0.0
    for row in table:
        acc += row[-1] if isinstance(row[-1], float) else row[1]
        if u < acc:
            return row
    return table[-1]


def _iso(s: int) -> str:
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _toml_str(value: str) -> str:
    return json.dumps(value)


def generate(run_dir: Path, accounts: int, per_line: int, seed: int) -> dict:
    """Write the usage CSV, ``config/accounts.toml``, ``config/billing.toml``
    and ``expected.json`` into ``run_dir``; returns the description."""
    rng = random.Random(seed)
    (run_dir / "usage").mkdir(parents=True, exist_ok=True)
    (run_dir / "config").mkdir(parents=True, exist_ok=True)
    meters = {p: m for p, m, _u, _t in PRODUCTS}
    d0, d1 = int(DATA_FROM.timestamp()), int(DATA_TO.timestamp())
    acc_lines = ["# written by bench/bench_invoicing.py", ""]
    bill_lines = ["# written by bench/bench_invoicing.py: credits and discounts", ""]
    expected: dict[str, dict] = {}
    manual_charges: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    records = running = 0
    with localcontext() as ctx, open(run_dir / "usage" / "usage.csv", "w", encoding="utf-8", newline="") as csv:
        ctx.prec = 80
        ctx.traps[Inexact] = True  # the reference is exact or fails
        csv.write("record_id,account,resource_id,meter,start,end,quantity\n")
        for i in range(accounts):
            aid = account_id(i)
            kind, country, tz_name, _share = _pick(rng, MIX)
            acc = {"id": aid, "kind": kind, "country": country, "timezone": tz_name}
            counts[f"{kind} {country}"] = counts.get(f"{kind} {country}", 0) + 1
            acc_lines += ["[[accounts]]", f'id = "{aid}"', f'name = "Customer {i} {country}"', f'country = "{country}"',
                          f'timezone = "{tz_name}"', f'email = "billing@{aid}.example"']
            if kind in ("domestic_vat", "reverse_charge"):
                acc_lines.append(f'vat_id = "{vat_id(country, i)}"')
            elif kind == "export" and rng.random() < 0.5:
                acc_lines.append(f'vat_id = "{country}-TAX-{i:06d}"')  # kept as is outside the EU
            if kind == "exempt":
                acc_lines += ["tax_exempt = true", f"exemption_reason = {_toml_str(EXEMPTION_REASON)}"]
            acc_lines.append("")

            # usage: vcpu and memory always, the others sometimes
            size, _share, vcpus, gibs = _pick(rng, SIZES)
            products = ["vcpu", "memory"] + [p for p, prob in OPTIONAL.items()
                                             if rng.random() < (0.5 if size == "large" and p == "gpu" else prob)]
            p1 = int(_midnight("2025-04-01", ZoneInfo(tz_name)).timestamp())
            usage: dict[str, Decimal] = {}
            for product in products:
                q_total = Decimal(0)
                for k in range(rng.randint(1, 2 * per_line - 1)):
                    start = d0 + rng.randrange(d1 - d0 - 3600)
                    if rng.random() < RUNNING_SHARE:
                        end = None
                        seconds = p1 - start
                        running += 1
                    else:
                        rest = d1 - start
                        whole = size == "large" and rng.random() < 0.7
                        seconds = rest if whole else min(rest, int(math.exp(rng.uniform(math.log(60), math.log(rest)))))
                        end = start + seconds
                    if product == "vcpu":
                        qty = rng.choice(vcpus)
                    elif product == "memory":
                        qty = rng.choice(gibs)
                    elif product == "block":
                        qty = str(Decimal(rng.randint(10_000, 2_000_000)) / 1000)
                    elif product == "gpu":
                        qty = rng.choice(("1", "2", "4", "8"))
                    else:
                        qty = "1"
                    q_total += Decimal(qty) * seconds
                    records += 1
                    csv.write(f"r{records:09d},{aid},{aid}/{product}-{k},{meters[product]},{_iso(start)},"
                              f"{_iso(end) if end is not None else ''},{qty}\n")
                usage[product] = q_total

            # discounts and credits; some with windows that miss March on
            # its very edges (valid until 28 February, from 1 April;
            # expiring 30 or 31 March, granted 1 April), some that just make it
            discounts: list[dict] = []
            r = rng.random()
            if r < 0.08:
                discounts.append({"product": "vcpu", "percent": rng.choice(("5", "10", "12.5", "15")),
                                  "valid_from": "2025-01-01", "valid_until": "2025-12-31"})
            elif r < 0.12:
                discounts.append({"percent": rng.choice(("3", "7.5")), "valid_from": "2025-03-31"})
            elif r < 0.15:
                discounts.append({"amount": rng.choice(("5.00", "20.00", "250.00")), "valid_from": "2025-01-01"})
            elif r < 0.16:
                discounts.append({"percent": "50", "valid_until": "2025-02-28"})
            elif r < 0.17:
                discounts.append({"percent": "50", "valid_from": "2025-04-01"})
            elif r < 0.19:
                discounts += [{"product": "vcpu", "percent": "10"}, {"amount": "15.00"}]
            credits: list[dict] = []
            r = rng.random()
            if r < 0.08:
                credits.append({"kind": "promotional", "amount": rng.choice(("10.00", "50.00", "500.00")),
                                "expires": "2026-12-31"})
            elif r < 0.12:
                credits.append({"kind": "prepaid", "amount": rng.choice(("100.00", "1000.00"))})
            elif r < 0.13:
                credits.append({"kind": "promotional", "amount": "30.00", "expires": "2025-03-31"})
            elif r < 0.14:
                credits.append({"kind": "promotional", "amount": "30.00", "expires": "2025-03-30"})
            elif r < 0.145:
                credits.append({"kind": "promotional", "amount": "40.00", "granted": "2025-03-20"})
            elif r < 0.15:
                credits.append({"kind": "promotional", "amount": "40.00", "granted": "2025-04-01"})
            elif r < 0.16:
                credits += [{"kind": "promotional", "amount": "20.00", "expires": "2025-12-31"},
                            {"kind": "prepaid", "amount": "75.00", "expires": "2026-06-30"}]
            for n, d in enumerate(discounts):
                bill_lines += ["[[discounts]]", f'account = "{aid}"', *(f"{k} = {_toml_str(v)}" for k, v in d.items()),
                               f'description = "Discount {n + 1}"', ""]
            for n, c in enumerate(credits):
                bill_lines += ["[[credits]]", f'account = "{aid}"', 'currency = "EUR"',
                               *(f"{k} = {_toml_str(v)}" for k, v in c.items()), f'description = "Credit {n + 1}"', ""]
            manual = []
            if rng.random() < MANUAL_SHARE:
                manual.append(rng.choice(("49.00", "150.00", "12.34")))
                manual_charges.append((aid, manual[0]))
            expected[aid] = expected_invoice(acc, usage, manual, discounts, credits)
    (run_dir / "config" / "accounts.toml").write_text("\n".join(acc_lines), encoding="utf-8")
    (run_dir / "config" / "billing.toml").write_text("\n".join(bill_lines), encoding="utf-8")
    meta = {"accounts": accounts, "records": records, "running": running, "per_line": per_line, "seed": seed,
            "mix": counts, "manual_charges": manual_charges,
            "discounts": sum(1 for line in bill_lines if line == "[[discounts]]"),
            "credits": sum(1 for line in bill_lines if line == "[[credits]]"),
            "sum_total": str(sum((Decimal(e["total"]) for e in expected.values()), Decimal(0))),
            "sum_amount_due": str(sum((Decimal(e["amount_due"]) for e in expected.values()), Decimal(0))),
            "sum_usage_lines": str(sum((Decimal(a) for e in expected.values() for p, a in e["lines"].items()
                                        if p != "manual"), Decimal(0)))}
    (run_dir / "expected.json").write_text(json.dumps(expected), encoding="utf-8")
    return meta


def write_config(path: Path, database: str, accounts: int) -> Path:
    """The workspace's hub.toml for one store: ``bench_rating``'s meters and
    products, then the source, seller, tax rates and invoicing; the accounts,
    credits and discounts are in ``config/`` (shared by every store)."""
    write_catalog_config(path, database, 0)
    catalog = path.read_text(encoding="utf-8").split("\n", 1)[1]  # without its first comment line
    head = [f"# written by bench/bench_invoicing.py: {PERIOD}, {accounts} accounts",
            'include = ["config/*.toml"]', ""]
    tail = ["[[sources]]", f'name = "{SOURCE}"', 'type = "csv"', 'path = "usage/*.csv"', "",
            "[seller]", 'name = "Nimbus Cloud GmbH"', f'country = "{SELLER_COUNTRY}"', 'vat_id = "DE136695976"',
            'email = "billing@nimbus.example"',
            'address = { street = "Hafenstrasse 1", city = "Hamburg", postal_code = "20457" }', "",
            "[tax.rates]", *(f'{cc} = "{rate}"' for cc, rate in TAX_RATES.items()), "",
            "[invoicing]", 'schedule = "monthly"', 'grace = "1d"', "payment_terms_days = 30",
            f'number_format = "{NUMBER_FORMAT}"', 'credit_note_format = "CN-{year}-{seq:06d}"', ""]
    path.write_text("\n".join(head) + catalog + "\n" + "\n".join(tail), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# the steps (each in a child process)


def _workspace(config_path: Path):  # type: ignore[no-untyped-def]
    """What ``hub --config PATH invoice --period 2025-03`` works with."""
    from hub.app import Hub
    from hub.periods import parse_period

    t = time.perf_counter()
    hub = Hub.open(config_path)
    config = hub.config
    engine = hub.engine
    return config, engine, parse_period(PERIOD), time.perf_counter() - t


class Watcher:
    """Prints on stderr, every ``every`` seconds, how many invoices the store
    holds (its own connection; one ``count(*)`` each time)."""

    def __init__(self, url: str, label: str, total: int, every: float, issued_only: bool) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(url, poolclass=NullPool)
        self.sql = "SELECT count(*) FROM invoices WHERE kind = 'invoice'" + (
            " AND number IS NOT NULL" if issued_only else "")
        self.label, self.total, self.every = label, total, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self) -> Self:
        self.t0 = time.perf_counter()
        if self.every > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()
        self.engine.dispose()

    def run(self) -> None:
        from sqlalchemy import text

        while not self.stop.wait(self.every):
            try:
                with self.engine.connect() as conn:
                    n = conn.scalar(text(self.sql)) or 0
            except Exception as exc:  # noqa: BLE001 - progress only
                print(f"  [{self.label}] progress unavailable: {exc}", file=sys.stderr, flush=True)
                continue
            s = time.perf_counter() - self.t0
            eta = f", ~{(self.total - n) / (n / s):.0f}s left" if n else ""
            print(f"  [{self.label}] {n:,} / {self.total:,} invoices after {s:.0f}s ({n / s:.1f}/s{eta})",
                  file=sys.stderr, flush=True)


def _timed_close(engine, config, period, label: str, accounts: int, every: float, **kw) -> tuple[list, float, float, float]:  # type: ignore[no-untyped-def]
    """``close_period`` of every account, timed; (closings, seconds, this
    process's CPU seconds, peak RSS MB). On SQLite the CPU time holds all
    the work (the database runs in the process); wall time well above it
    means other processes took the cores."""
    from hub.closing import close_period

    url = engine.url.render_as_string(hide_password=False)
    with Watcher(url, label, accounts, every, issued_only=not kw.get("draft")):
        t, cpu = time.perf_counter(), time.process_time()
        closings = close_period(engine, config, period, now=CLOSE_NOW, **kw)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return closings, seconds, cpu, _maxrss_mb()


def _outcomes(closings: list) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in closings:
        out[c.outcome] = out.get(c.outcome, 0) + 1
    return out


def verify(engine, config, period, run_dir: Path, accounts: int) -> dict:  # type: ignore[no-untyped-def]
    """The checks of the issued invoices against ``expected.json``; raises
    ``RuntimeError`` listing the differences."""
    from sqlalchemy import select

    from hub.rating import rate
    from hub.store.tables import invoice_lines, invoices

    expected = json.loads((run_dir / "expected.json").read_text())
    problems: list[str] = []
    with engine.connect() as conn:
        rows = conn.execute(select(invoices.c.id, invoices.c.number, invoices.c.account, invoices.c.status,
                                   invoices.c.period, invoices.c.total, invoices.c.amount_due, invoices.c.content)
                            .where(invoices.c.kind == "invoice").order_by(invoices.c.id)).all()
        lines = conn.execute(select(invoice_lines.c.invoice_id, invoice_lines.c.product, invoice_lines.c.amount,
                                    invoice_lines.c.origin)).all()
    if len(rows) != accounts:
        problems.append(f"{len(rows):,} invoices, expected exactly {accounts:,}")
    want_numbers = [NUMBER_FORMAT.format(year=ISSUE_DATE.year, month=ISSUE_DATE.month, seq=s)
                    for s in range(1, len(rows) + 1)]
    by_number = sorted(rows, key=lambda r: r.number or "")
    if [r.number for r in by_number] != want_numbers:
        got = sorted(r.number or "(none)" for r in rows)
        problems.append(f"numbers are not {want_numbers[0] if want_numbers else '-'}..{want_numbers[-1] if want_numbers else '-'} "
                        f"without a gap: first {got[:3]}, last {got[-3:]}, "
                        f"{len(set(got))} distinct, missing {sorted(set(want_numbers) - set(got))[:5]}")
    if [r.number for r in rows] != want_numbers[:len(rows)]:
        problems.append("numbers do not follow the issue order (invoice ids)")
    bad_status = [f"{r.number}: {r.status}, {r.period}" for r in rows if r.status != "issued" or r.period != PERIOD]
    problems += [f"not issued for {PERIOD}: {b}" for b in bad_status[:5]]
    seen = set()
    line_amounts: dict[int, dict[str, Decimal]] = {}
    for inv_id, product, amount, _origin in lines:
        d = line_amounts.setdefault(inv_id, {})
        d[product] = d.get(product, Decimal(0)) + Decimal(amount)
    sum_total = sum_due = Decimal(0)
    keys = ("subtotal", "discount_total", "promotional_credit", "taxable_amount", "total", "prepaid_applied",
            "amount_due")
    for r in rows:
        want = expected.get(r.account)
        if want is None or r.account in seen:
            problems.append(f"{r.number}: account {r.account} {'twice' if want else 'unknown'}")
            continue
        seen.add(r.account)
        doc = json.loads(r.content)
        got = {k: doc[k] for k in keys}
        got.update(category=doc["tax"]["category"], rate=doc["tax"]["rate"], tax=doc["tax"]["amount"])
        diffs = [f"{k} {got[k]} (expected {want[k]})" for k in (*keys, "rate", "tax")
                 if Decimal(got[k]) != Decimal(want[k])]
        if got["category"] != want["category"]:
            diffs.append(f"category {got['category']} (expected {want['category']})")
        if Decimal(r.total) != Decimal(want["total"]) or Decimal(r.amount_due) != Decimal(want["amount_due"]):
            diffs.append(f"stored total/amount due {r.total}/{r.amount_due}")
        got_lines = {p: str(a) for p, a in line_amounts.get(r.id, {}).items()}
        if {p: Decimal(a) for p, a in got_lines.items()} != {p: Decimal(a) for p, a in want["lines"].items()}:
            diffs.append(f"lines {got_lines} (expected {want['lines']})")
        if diffs:
            problems.append(f"{r.number} ({r.account}): " + "; ".join(diffs))
        sum_total += Decimal(r.total)
        sum_due += Decimal(r.amount_due)
    missing = sorted(set(expected) - seen)
    if missing:
        problems.append(f"{len(missing)} accounts without an invoice: {missing[:5]}")
    want_total = sum((Decimal(e["total"]) for e in expected.values()), Decimal(0))
    want_due = sum((Decimal(e["amount_due"]) for e in expected.values()), Decimal(0))
    if sum_total != want_total:
        problems.append(f"the invoices' totals sum to {sum_total}, the independent computation to {want_total}")
    if sum_due != want_due:
        problems.append(f"the invoices' amounts due sum to {sum_due}, the independent computation to {want_due}")
    # hub rate's path, the whole month at once: its lines are the invoices' usage lines
    t = time.perf_counter()
    charges = rate(engine, config, period, None, now=CLOSE_NOW)
    rate_s = time.perf_counter() - t
    rate_sum = sum((c.amount for c in charges), Decimal(0))
    usage_sum = sum((a for d in line_amounts.values() for p, a in d.items() if p != "manual"), Decimal(0))
    if rate_sum != usage_sum:
        problems.append(f"hub rate's {len(charges):,} charges sum to {rate_sum}, the invoices' usage lines to {usage_sum}")
    if problems:
        head = f"{len(problems)} problem(s) in the issued invoices:\n  "
        raise RuntimeError(head + "\n  ".join(problems[:30]) + (f"\n  ... and {len(problems) - 30} more"
                                                               if len(problems) > 30 else ""))
    return {"invoices": len(rows), "first_number": rows[0].number if rows else None,
            "last_number": rows[-1].number if rows else None, "sum_total": str(sum_total),
            "sum_amount_due": str(sum_due), "lines": len(lines), "rate_charges": len(charges),
            "rate_sum": str(rate_sum), "rate_s": round(rate_s, 3)}


def step_pull(config_path: Path, run_dir: Path, meta: dict) -> dict:
    """``hub pull`` (and a re-pull), then the manual charges."""
    from bench_import import run_import

    from hub.closing import add_manual_charge

    figures = run_import(config_path, meta["records"], progress=True)
    config, engine, _period, _setup = _workspace(config_path)
    for account, amount in meta["manual_charges"]:
        add_manual_charge(engine, config, account, Decimal(amount), "Setup fee", now=CLOSE_NOW - timedelta(days=5))
    engine.dispose()
    return {k: figures[k] for k in ("rows", "seconds", "rows_per_s", "repull_s", "setup_s", "peak_rss_mb")}


def step_close(config_path: Path, run_dir: Path, meta: dict, every: float) -> dict:
    """Close the month for every account, then again (the no-op), then check."""
    n = meta["accounts"]
    config, engine, period, setup_s = _workspace(config_path)
    backend = engine.dialect.name
    rss_before = _maxrss_mb()
    print(f"  [{backend}] closing {PERIOD} for {n:,} accounts (config and store opened in {setup_s:.1f}s) ...",
          file=sys.stderr, flush=True)
    closings, seconds, cpu, rss = _timed_close(engine, config, period, f"{backend} close", n, every,
                                               issue_date=ISSUE_DATE)
    first = _outcomes(closings)
    print(f"  [{backend}] closed in {seconds:.1f}s: {first}; closing again ...", file=sys.stderr, flush=True)
    again, again_s, again_cpu, again_rss = _timed_close(engine, config, period, f"{backend} again", n, 0,
                                                        issue_date=ISSUE_DATE)
    second = _outcomes(again)
    figures = {"setup_s": round(setup_s, 3), "rss_before_mb": round(rss_before, 1), "close_s": round(seconds, 3),
               "close_cpu_s": round(cpu, 3), "invoices_per_s": round(n / seconds, 2),
               "close_peak_rss_mb": round(rss, 1), "again_s": round(again_s, 3), "again_cpu_s": round(again_cpu, 3),
               "again_accounts_per_s": round(n / again_s, 1), "again_peak_rss_mb": round(again_rss, 1),
               "outcomes": first, "again_outcomes": second}
    problems = []
    if first != {"issued": n}:
        problems.append(f"the close gave {first}, expected {{'issued': {n}}}")
    if second != {"already_issued": n}:
        problems.append(f"the second close gave {second}, expected {{'already_issued': {n}}}")
    try:
        figures.update(verify(engine, config, period, run_dir, n))
    except RuntimeError as exc:  # the timings stand; the run fails
        problems.append(str(exc))
    engine.dispose()
    if problems:
        figures["error"] = "; ".join(problems)
    return figures


def step_drafts(config_path: Path, run_dir: Path, meta: dict, every: float) -> dict:
    """Drafts for every account, then issuing them, then the checks."""
    n = meta["accounts"]
    config, engine, period, setup_s = _workspace(config_path)
    backend = engine.dialect.name
    print(f"  [{backend}] drafts of {PERIOD} for {n:,} accounts ...", file=sys.stderr, flush=True)
    drafts, draft_s, draft_cpu, draft_rss = _timed_close(engine, config, period, f"{backend} drafts", n, every,
                                                         draft=True)
    print(f"  [{backend}] drafts in {draft_s:.1f}s; issuing them ...", file=sys.stderr, flush=True)
    issued, issue_s, issue_cpu, rss = _timed_close(engine, config, period, f"{backend} issue drafts", n, every,
                                                   issue_date=ISSUE_DATE)
    figures = {"setup_s": round(setup_s, 3), "draft_s": round(draft_s, 3), "draft_cpu_s": round(draft_cpu, 3),
               "drafts_per_s": round(n / draft_s, 2), "draft_peak_rss_mb": round(draft_rss, 1),
               "issue_s": round(issue_s, 3), "issue_cpu_s": round(issue_cpu, 3), "issued_per_s": round(n / issue_s, 2),
               "issue_peak_rss_mb": round(rss, 1)}
    problems = []
    if _outcomes(drafts) != {"draft": n}:
        problems.append(f"the drafts gave {_outcomes(drafts)}, expected {{'draft': {n}}}")
    if _outcomes(issued) != {"issued": n}:
        problems.append(f"issuing the drafts gave {_outcomes(issued)}, expected {{'issued': {n}}}")
    try:
        figures.update(verify(engine, config, period, run_dir, n))
    except RuntimeError as exc:
        problems.append(str(exc))
    engine.dispose()
    if problems:
        figures["error"] = "; ".join(problems)
    return figures


def child_main(args: argparse.Namespace) -> int:
    out = Path(args.child_result)
    run_dir = Path(args.child_dir)
    # the code this step runs (the tree may change between steps)
    state = code_state() if args.child != "generate" else None
    try:
        if args.child == "generate":
            t = time.perf_counter()
            figures = generate(run_dir, args.accounts, args.per_line, args.seed)
            figures["generate_s"] = round(time.perf_counter() - t, 1)
        else:
            meta = json.loads((run_dir / "meta.json").read_text())
            config_path = Path(args.child_config)
            if args.child == "pull":
                figures = step_pull(config_path, run_dir, meta)
            elif args.child == "close":
                figures = step_close(config_path, run_dir, meta, args.progress_every)
            else:
                figures = step_drafts(config_path, run_dir, meta, args.progress_every)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        out.write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}", "peak_rss_mb": round(_maxrss_mb(), 1)}))
        traceback.print_exc()
        return 1
    figures.update(peak_rss_mb=round(_maxrss_mb(), 1), hwm_mb=_hwm_mb())
    if state is not None:
        figures["code"] = state
    out.write_text(json.dumps(figures))
    if "error" in figures:
        print(f"FAILED: {figures['error']}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------
# the parent


def run_child(step: str, run_dir: Path, args: argparse.Namespace, config_path: Path | None = None,
              key: str | None = None) -> dict:
    key = key or step
    result = run_dir / f"result-{key}.json"
    result.unlink(missing_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", step, "--child-dir", str(run_dir),
           "--child-result", str(result), "--accounts", str(args.accounts), "--per-line", str(args.per_line),
           "--seed", str(args.seed), "--progress-every", str(args.progress_every)]
    if config_path is not None:
        cmd += ["--child-config", str(config_path)]
    try:
        code = subprocess.run(cmd, check=False, timeout=args.timeout).returncode
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout:.0f}s"}
    try:
        figures = json.loads(result.read_text())
    except (OSError, ValueError):
        figures = {"error": f"the child exited with {code} and wrote no result"}
    if code and "error" not in figures:
        figures["error"] = f"the child exited with {code}"
    return figures


def fresh_store(backend: str, run_dir: Path, name: str) -> tuple[str, str | None]:
    """A database URL for a new, empty store, and its PostgreSQL schema."""
    if backend == "postgresql":
        schema, url = pg_create_schema()
        return url, schema
    db = run_dir / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{db}", None


def run_backend(backend: str, run_dir: Path, args: argparse.Namespace, meta: dict) -> dict:
    """Pull and close on a fresh store of ``backend`` (and, with --drafts,
    draft and issue on another); the figures of each step."""
    out: dict = {"backend": backend}
    stores = [("close", "hub")] + ([("drafts", "hub-drafts")] if args.drafts else [])
    for step, name in stores:
        url, schema = fresh_store(backend, run_dir, f"{name}-{backend}")
        try:
            config_path = write_config(run_dir / f"{name}-{backend}.toml", url, args.accounts)
            where = f" (schema {schema})" if schema else ""
            print(f"[{backend}] pulling {meta['records']:,} records into a fresh store{where} ...", flush=True)
            pulled = run_child("pull", run_dir, args, config_path, key=f"pull-{step}-{backend}")
            out[f"pull_{step}"] = pulled
            if "error" in pulled:
                out["error"] = f"pull: {pulled['error']}"
                return out
            print(f"  {pulled['rows']:,} rows in {pulled['seconds']:.1f}s ({pulled['rows_per_s']:,} rows/s); "
                  f"re-pull {pulled['repull_s']:.2f}s", flush=True)
            what = "closing" if step == "close" else "drafting and issuing"
            print(f"[{backend}] {what} {PERIOD} for {args.accounts:,} accounts ...", flush=True)
            got = run_child(step, run_dir, args, config_path, key=f"{step}-{backend}")
            out[step] = got
            if "error" in got:
                out["error"] = f"{step}: {got['error']}"
                return out
            if step == "close":
                print(f"  {got['close_s']:.1f}s, {got['invoices_per_s']:.1f} invoices/s; again (no-op) "
                      f"{got['again_s']:.1f}s; checks passed", flush=True)
            else:
                print(f"  drafts {got['draft_s']:.1f}s, issuing them {got['issue_s']:.1f}s; checks passed", flush=True)
        finally:
            if schema:
                pg_drop_schema(schema)
    return out


def report(results: list[dict], meta: dict) -> bool:
    n = meta["accounts"]
    rows: list[tuple] = [("backend", "step", "count", "seconds", "CPU s", "per second", "peak RSS MB")]
    failures = []
    for r in results:
        b = r["backend"]
        if "skipped" in r:
            rows.append((b, "SKIPPED", "-", "-", "-", "-", "-"))
            continue
        for key in ("pull_close", "close", "pull_drafts", "drafts"):
            f = r.get(key)
            if not f or ("error" in f and "close_s" not in f and "issue_s" not in f):
                continue
            if key.startswith("pull"):
                rows.append((b, "pull (hub pull)", f"{f['rows']:,} rows", f"{f['seconds']:.2f}", "-",
                             f"{f['rows_per_s']:,} rows", f"{f['peak_rss_mb']:.0f}"))
            elif key == "close":
                rows.append((b, "load config, open store", f"{n:,} accounts", f"{f['setup_s']:.2f}", "-", "-",
                             f"{f['rss_before_mb']:.0f}"))
                rows.append((b, f"close {PERIOD}", f"{n:,} invoices", f"{f['close_s']:.2f}", f"{f['close_cpu_s']:.1f}",
                             f"{f['invoices_per_s']:,.1f} invoices", f"{f['close_peak_rss_mb']:.0f}"))
                rows.append((b, "close again (no-op)", f"{n:,} accounts", f"{f['again_s']:.2f}",
                             f"{f['again_cpu_s']:.1f}", f"{f['again_accounts_per_s']:,.0f} accounts",
                             f"{f['again_peak_rss_mb']:.0f}"))
                if "rate_s" in f:
                    rows.append((b, "hub rate (whole month)", f"{f['rate_charges']:,} lines", f"{f['rate_s']:.2f}",
                                 "-", "-", f"{f['peak_rss_mb']:.0f}"))
            else:
                rows.append((b, "drafts (--draft)", f"{n:,} drafts", f"{f['draft_s']:.2f}", f"{f['draft_cpu_s']:.1f}",
                             f"{f['drafts_per_s']:,.1f} drafts", f"{f['draft_peak_rss_mb']:.0f}"))
                rows.append((b, "issue the drafts", f"{n:,} invoices", f"{f['issue_s']:.2f}", f"{f['issue_cpu_s']:.1f}",
                             f"{f['issued_per_s']:,.1f} invoices", f"{f['issue_peak_rss_mb']:.0f}"))
        if "error" in r:
            rows.append((b, "FAILED", "-", "-", "-", "-", "-"))
            failures.append(f"FAILED: {b}: {r['error']}")
    print()
    print_table(rows, right_from=2)
    print()
    print(f"independent computation: {n:,} invoices, totals {meta['sum_total']} EUR, amount due "
          f"{meta['sum_amount_due']} EUR, usage lines {meta['sum_usage_lines']} EUR")
    for r in results:
        for key in ("close", "drafts"):
            f = r.get(key)
            if f and "error" not in f and "invoices" in f:
                print(f"  {r['backend']} {key}: {f['invoices']:,} invoices {f['first_number']}..{f['last_number']} "
                      f"gapless, totals {f['sum_total']} EUR, amount due {f['sum_amount_due']} EUR, "
                      f"{f['lines']:,} lines; hub rate {f['rate_sum']} EUR in {f['rate_charges']:,} lines: agree")
    sys.stdout.flush()
    for f in failures:
        print(f, file=sys.stderr)
    return not failures


def profile_main(args: argparse.Namespace, run_dir: Path, meta: dict) -> int:
    """Pull into a fresh SQLite store, then close ``--profile-accounts``
    accounts in this process under cProfile and print the hotspots."""
    import cProfile
    import pstats

    from hub.closing import close_period

    url, _ = fresh_store("sqlite", run_dir, "hub-profile-sqlite")
    config_path = write_config(run_dir / "hub-profile-sqlite.toml", url, args.accounts)
    pulled = step_pull(config_path, run_dir, meta)
    print(f"pulled {pulled['rows']:,} rows in {pulled['seconds']:.1f}s", flush=True)
    config, engine, period, _setup_s = _workspace(config_path)
    k = min(args.profile_accounts, args.accounts)
    chosen = [account_id(i) for i in range(k)]
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    closings = close_period(engine, config, period, chosen, now=CLOSE_NOW, issue_date=ISSUE_DATE)
    prof.disable()
    wall = time.perf_counter() - t
    print(f"profiled: {k:,} of {args.accounts:,} accounts closed in {wall:.1f}s under cProfile "
          f"({k / wall:.1f}/s; {_outcomes(closings)})")
    stats_path = run_dir / "close.prof"
    prof.dump_stats(str(stats_path))
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    print(f"stats saved to {stats_path} (python3 -m pstats {stats_path})")
    engine.dispose()
    return 0


def _backends(text: str) -> list[str]:
    names = [b.strip() for b in text.split(",") if b.strip()]
    if not names or set(names) - {"sqlite", "postgresql"}:
        raise argparse.ArgumentTypeError(f"{text!r}: name sqlite, postgresql or both, comma-separated")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=10_000, help="accounts, one invoice each (default 10,000)")
    p.add_argument("--per-line", type=int, default=3,
                   help="mean usage records per account and product (1 to 2N-1; default 3)")
    p.add_argument("--seed", type=int, default=20250301, help="seed of the generator")
    p.add_argument("--backends", type=_backends, default="sqlite,postgresql",
                   help="comma-separated: sqlite, postgresql (a fresh schema of $HUB_TEST_POSTGRES, "
                        "default postgresql+psycopg://postgres@127.0.0.1:5432/test, dropped at the end)")
    p.add_argument("--workdir", type=Path, help="keep the workspace and SQLite stores here "
                                                "(default: a temporary directory, removed at the end)")
    p.add_argument("--skip-generate", action="store_true", help="reuse the workspace of an earlier run in --workdir")
    p.add_argument("--drafts", action="store_true",
                   help="also time drafts for every account then issuing them, on a second fresh store")
    p.add_argument("--timeout", type=float, default=3600, help="seconds allowed per subprocess (default 3600)")
    p.add_argument("--progress-every", type=float, default=30,
                   help="seconds between progress lines on stderr while closing (0: none; default 30)")
    p.add_argument("--profile", action="store_true",
                   help="instead: close --profile-accounts accounts on SQLite in-process under cProfile")
    p.add_argument("--profile-accounts", type=int, default=500, help="accounts closed under --profile (default 500)")
    p.add_argument("--child", choices=("generate", "pull", "close", "drafts"), help=argparse.SUPPRESS)
    p.add_argument("--child-dir", help=argparse.SUPPRESS)
    p.add_argument("--child-config", help=argparse.SUPPRESS)
    p.add_argument("--child-result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child_main(args)
    if args.accounts < 1 or args.per_line < 1:
        p.error("--accounts and --per-line must be positive")
    if args.skip_generate and not args.workdir:
        p.error("--skip-generate reuses the workspace of --workdir: give it")
    backends = ["sqlite"] if args.profile else args.backends
    unreachable = postgres_unreachable() if "postgresql" in backends else None
    if unreachable:
        print(f"skipping postgresql: not reachable at {POSTGRES} ({unreachable})", flush=True)

    tmp = None
    if args.workdir:
        workdir = args.workdir.resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hub-bench-invoicing-")
        workdir = Path(tmp.name)
    run_dir = workdir / f"invoicing-a{args.accounts}-r{args.per_line}-s{args.seed}"
    meta_path = run_dir / "meta.json"
    try:
        state = code_state()  # before the runs: the code they measure
        load_before = os.getloadavg()
        if args.skip_generate:
            if not meta_path.exists():
                p.error(f"--skip-generate: no generated workspace in {run_dir}")
            meta = json.loads(meta_path.read_text())
            print(f"reusing the workspace in {run_dir}", flush=True)
        else:
            if run_dir.exists():
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
            print(f"generating {args.accounts:,} accounts and their month of usage ...", flush=True)
            meta = run_child("generate", run_dir, args)
            if "error" in meta:
                print(f"FAILED: generating the workspace: {meta['error']}", file=sys.stderr)
                return 1
            meta_path.write_text(json.dumps(meta))
            print(f"  {meta['records']:,} usage records ({meta['running']:,} running), {meta['credits']:,} credits, "
                  f"{meta['discounts']:,} discounts, {len(meta['manual_charges']):,} manual charges in "
                  f"{meta['generate_s']}s: {run_dir}", flush=True)
        if args.profile:
            return profile_main(args, run_dir, meta)
        results = []
        for backend in backends:
            if backend == "postgresql" and unreachable:
                results.append({"backend": backend, "skipped": unreachable})
                continue
            results.append(run_backend(backend, run_dir, args, meta))
        ok = report(results, meta)
        load = [round(x, 2) for x in (*load_before, *os.getloadavg())]
        print(f"load average (1, 5, 15 min) before the runs {load[0]}, {load[1]}, {load[2]}; after {load[3]}, "
              f"{load[4]}, {load[5]} on {os.cpu_count()} CPUs (other processes running meanwhile skew the figures)")
        summary = {"accounts": args.accounts, "period": PERIOD, "python": sys.version.split()[0], "code": state,
                   "workspace": {k: v for k, v in meta.items() if k != "manual_charges"},
                   "parent_peak_rss_mb": round(_maxrss_mb(), 1), "loadavg_before_after": load,
                   "results": results, "ok": ok}
        print("\nSUMMARY " + json.dumps(summary, separators=(",", ":")))
        if not ok:
            print("FAILED", file=sys.stderr)
        return 0 if ok else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
