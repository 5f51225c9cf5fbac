"""The application layer: one :class:`Hub` per hub.toml, the only door to the pipeline.

A :class:`Hub` owns the validated configuration, the plugin host and the store of one hub.toml, and offers
every operation as a method with a typed result: pull, usage, rate, what-if, trace, reconcile, close,
invoices (list, show, pay, credit note), manual charges, credits, render, documents, deliver, deliveries,
quarantine. The CLI (``hub ...``), the scheduler (``hub run``) and the coming HTTP API only parse their
input, call these methods and present the result; they hold no billing logic and no SQL.

Concurrency: a Hub is safe to share between threads (a web server's). Its configuration and plugin host are
read-only once opened, the store's engine is opened once under a lock and pools its connections, and each
method runs in its own transactions. The stages below make writers safe against each other: one pull per
source at a time across processes, numbers taken under the series' lock, deliveries claimed with a lease.

Errors: bad input that the caller should show its user (an unknown account, a malformed period, an invoice
that does not exist, an operation the state does not allow) is a :class:`HubError` whose message names the
problem; a configuration that does not load is :class:`~hub.config.ConfigErrors` (every error at once).

This module knows the stages' public functions and the store's opening; it must not know SQL, the tables,
click or HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hub import due
from hub.app.books import Books
from hub.app.errors import HubError, NotFound
from hub.app.reminders import Reminders
from hub.closing.readiness import invoicing_problems, issues_invoices
from hub.config import Config, ConfigError, load_config
from hub.documents import (
    Outcome,
    RenderError,
    StoredDocument,
    list_documents,
    pending,
    render_jobs,
    render_many,
    render_pending,
    renderer_instances,
)
from hub.host import Host, build_host
from hub.ingest import Progress, PullResult, UnknownSource, pull
from hub.closing import (
    Closing,
    InvoicingError,
    LedgerEntry,
    Overrides,
    add_manual_charge,
    close_period,
    credit_note,
    ledger,
    pay,
)
from hub.invoices import STATUSES as INVOICE_STATUSES
from hub.invoices import find, invoice_json, list_invoices
from hub.invoicing.inputs import CreditGrant
from hub.outbox import STATUSES as DELIVERY_STATUSES
from hub.outbox import Attempt, OutboxError, attempts_of, deliver_pending, list_deliveries, notify, retry
from hub.periods import Period, parse_period
from hub.rating import Charge, Difference, TracedRecord, compare, keep_rollups, rate, trace
from hub.reconcile import Reconciliation, reconcile
from hub.store.db import current_revision, database_url, open_store, shown_url, upgrade
from hub.store.queries import QuarantineEntry, QuarantinePage, issued_numbers, quarantine_entries, quarantine_page
from hub.usage_report import UsageLine, usage_lines

__all__ = [
    "DELIVERY_STATUSES", "INVOICE_STATUSES", "AccountTotal", "Attempt", "Charge", "Closing", "Difference", "Hub",
    "HubError", "Ledger", "NotFound", "Outcome", "PullResult", "QuarantineEntry", "Reconciliation",
    "StoredDocument", "Trace", "TracedRecord", "UsageLine", "WhatIf",
]


@dataclass(frozen=True)
class Trace:
    """The usage records behind one charge, and the charges they make."""

    account: str
    product: str
    resource_id: str | None
    period: Period
    records: list[TracedRecord]
    charges: list[Charge]

    @property
    def quantity(self) -> Fraction:
        """What the counted records add up to, in the meter's unit (exact)."""
        return sum((r.contribution for r in self.records), start=Fraction(0))


@dataclass(frozen=True)
class AccountTotal:
    """One account's charges under the two catalogs of a what-if."""

    account: str
    currency: str
    old: Decimal
    new: Decimal

    @property
    def change(self) -> Decimal:
        return self.new - self.old


@dataclass(frozen=True)
class WhatIf:
    """A period rated under the configuration's catalog (old) and another one (new)."""

    period: Period
    catalog: Path
    differences: list[Difference]
    accounts: list[AccountTotal]


@dataclass(frozen=True)
class Ledger:
    """An account's credit grants with their balances, and every entry of their history."""

    account: str
    grants: list[CreditGrant]
    history: list[LedgerEntry]


class Hub(Books, Reminders):
    """One hub.toml: its configuration, plugin host and store, and every operation on them.

    Open one with :meth:`open`. The store is opened (and migrated) on first use, so commands that only read
    the configuration never touch the database.
    """

    def __init__(self, config: Config, host: Host, engine: Engine | None = None) -> None:
        self.config = config
        self.host = host
        self._engine = engine
        self._engine_lock = threading.Lock()

    @classmethod
    def open(cls, config_path: str | Path, *, host: Host | None = None, check_secrets: bool = False) -> Hub:
        """Load and validate ``config_path`` with ``host`` (default: the installed plugins).

        :param check_secrets: also check that every secret the configuration names is set (``hub check``).
        :raises ConfigErrors: every configuration error at once.
        :raises PluginConflict: two installed plugins register one type name.
        """
        host = host or build_host()
        return cls(load_config(Path(config_path), host, check_secrets=check_secrets), host)

    @property
    def path(self) -> Path:
        """The hub.toml this hub was opened from."""
        return self.config.path

    @property
    def engine(self) -> Engine:
        """The store's engine, opened and migrated on first use."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = open_store(self.config.hub.database, self.config.base_dir)
        return self._engine

    @property
    def store_key(self) -> str:
        """The store's full URL: hubs with the same one share a store (and may share an engine)."""
        return database_url(self.config.hub.database, self.config.base_dir)

    def use_engine(self, engine: Engine) -> None:
        """Work on ``engine``, an engine already open on this hub's store (one engine per store and process)."""
        with self._engine_lock:
            self._engine = engine

    # ------------------------------------------------------------------
    # Input the caller got as text

    def period(self, text: str) -> Period:
        """A period written ``2026-10``, ``2026-W43`` or ``2026-10-15``."""
        try:
            return parse_period(text)
        except ValueError as exc:
            raise HubError(str(exc)) from None

    def accounts(self, ids: Iterable[str] = ()) -> list[str] | None:
        """``ids`` checked against the configuration; None for none (every account)."""
        ids = list(ids)
        unknown = [a for a in ids if a not in self.config.accounts]
        if unknown:
            raise HubError(f"unknown account {', '.join(map(repr, unknown))}")
        return ids or None

    def account(self, account_id: str) -> str:
        """One configured account's id."""
        self.accounts([account_id])
        return account_id

    def invoicing_problems(self) -> list[ConfigError]:
        """What invoicing would refuse in this configuration (no ``[seller]``, an account without country, a
        tax that cannot be determined, ...), each naming its table and key: ``hub check``'s errors beyond loading
        (see :func:`hub.closing.readiness.invoicing_problems`)."""
        return invoicing_problems(self.config)

    def issues_invoices(self) -> bool:
        """Whether this configuration sets up invoicing (``[seller]``, ``[invoicing]`` or ``[tax]``): what
        :meth:`invoicing_problems` finds is then an error of ``hub check``, which checks a rating-only one
        for rating alone."""
        return issues_invoices(self.config)

    # ------------------------------------------------------------------
    # The store

    def store_url(self) -> str:
        """The store's URL with any password hidden."""
        return shown_url(self.store_key)

    def upgrade(self) -> str | None:
        """Run pending migrations; the store's revision after them."""
        upgrade(self.engine)
        return current_revision(self.engine)

    # ------------------------------------------------------------------
    # pull

    def pull(self, sources: Sequence[str] = (), *, full: bool = False, now: datetime | None = None,
             progress: Progress | None = None) -> list[PullResult]:
        """Pull the named source instances (all when none is named); see :func:`hub.ingest.pull`."""
        try:
            return pull(self.config, self.host, self.engine, sources, full=full, now=now, progress=progress)
        except UnknownSource as exc:
            raise HubError(str(exc)) from None

    def quarantine(self, source: str | None = None, *, resolved: bool = False) -> list[QuarantineEntry]:
        """The rows no pull could import (open ones; ``resolved`` too if asked)."""
        return quarantine_entries(self.engine, source, include_resolved=resolved)

    def quarantine_page(self, source: str | None = None, *, resolved: bool = False,
                        limit: int | None = None) -> QuarantinePage:
        """The first ``limit`` rows no pull could import (all when ``None``), in file order, and their total."""
        return quarantine_page(self.engine, source, include_resolved=resolved, limit=limit)

    def usage(self, period: Period, accounts: Sequence[str] | None = None) -> list[UsageLine]:
        """The raw usage of ``period`` per account and meter, before any pricing."""
        return usage_lines(self.engine, self.config, period, accounts)

    # ------------------------------------------------------------------
    # rate

    def rate(self, period: Period, accounts: Sequence[str] | None = None) -> list[Charge]:
        """The charges of ``period``: one per future invoice line."""
        return rate(self.engine, self.config, period, accounts)

    def what_if(self, period: Period, catalog: Path, accounts: Sequence[str] | None = None,
                charges: list[Charge] | None = None) -> WhatIf:
        """``period`` rated under the configuration's catalog and under ``catalog`` (a TOML file of
        ``[[products]]`` and optionally ``[[meters]]``); ``charges``: the first rating, if the caller has it.

        :raises ConfigErrors: ``catalog`` does not load with this configuration.
        """
        other = load_config(self.path, self.host, catalog=catalog)
        old = charges if charges is not None else self.rate(period, accounts)
        differences = compare(old, rate(self.engine, other, period, accounts))
        totals: dict[tuple[str, str], list[Decimal]] = {}
        for d in differences:
            old_new = totals.setdefault((d.account, d.currency), [Decimal(0), Decimal(0)])
            old_new[0] += d.old.amount if d.old else 0
            old_new[1] += d.new.amount if d.new else 0
        return WhatIf(period, catalog, differences,
                      [AccountTotal(a, cur, o, n) for (a, cur), (o, n) in sorted(totals.items())])

    def trace(self, period: Period, account: str, product: str, resource: str | None = None) -> Trace:
        """The usage records behind ``account``'s charge for ``product`` (and ``resource``)."""
        self.account(account)
        if product not in self.config.catalog:
            raise HubError(f"unknown product {product!r}")
        try:
            records = trace(self.engine, self.config, period, account, product, resource)
        except ValueError as exc:
            raise HubError(str(exc)) from None
        lines = [c for c in self.rate(period, [account])
                 if c.product == product and (resource is None or c.resource_id in (None, resource))]
        return Trace(account, product, resource, period, records, lines)

    def reconcile(self, period: Period, accounts: Sequence[str] | None = None) -> Reconciliation:
        """Where every second of ``period``'s usage went."""
        return reconcile(self.engine, self.config, period, accounts)

    def keep_rollups(self, periods: Sequence[Period], now: datetime | None = None) -> list[Period]:
        """Rate those of ``periods`` whose rollups no rating has stored yet; the periods rated."""
        return keep_rollups(self.engine, self.config, periods, now=now)

    # ------------------------------------------------------------------
    # close

    def close(self, period: Period, accounts: Sequence[str] | None = None, *, draft: bool = False,
              issue_date: date | None = None, now: datetime | None = None, reissue: bool = False,
              purchase_order: str | None = None, buyer_reference: str | None = None) -> list[Closing]:
        """Close ``period`` for the accounts it is the schedule of (children on their parent's): an invoice
        each, issued unless ``draft``; the plugins are told what was issued. An account that cannot be
        invoiced is a closing with outcome ``failed`` (its reason in ``note``), the others are issued.

        :param reissue: a new invoice for each of ``accounts`` (required) whose period's invoice is void;
            ``refused`` for one whose invoice is not.
        :param purchase_order: in place of the account's (``buyer_reference`` too), on the invoices issued;
            only with ``accounts``.
        """
        for acc in accounts or ():
            root = self.config.accounts[self.config.tree.root_of(acc)]
            if root.schedule != period.kind:
                raise HubError(f"account {root.id!r} is invoiced {root.schedule}; {period} is a {period.kind} period")
        if reissue and not accounts:
            raise HubError("--reissue needs --account: the accounts whose voided invoice of the period is reissued")
        if (purchase_order is not None or buyer_reference is not None) and not accounts:
            raise HubError("--purchase-order and --buyer-reference need --account: they are one buyer's references")
        overrides = None
        if purchase_order is not None or buyer_reference is not None:
            overrides = Overrides(purchase_order, buyer_reference)
        try:
            closings = close_period(self.engine, self.config, period, accounts, draft=draft, issue_date=issue_date,
                                    now=now, reissue=reissue, overrides=overrides)
        except InvoicingError as exc:
            raise HubError(str(exc)) from exc
        self._issued([c for c in closings if c.outcome == "issued"])
        return closings

    def close_due(self, now: datetime | None = None) -> list[Closing]:
        """Close every period that is due at ``now`` (ended plus grace), oldest first, for every root
        account; a failure is a :class:`Closing` with outcome ``failed`` or ``error``. The plugins are told
        what was issued."""
        closings = due.close_due(self.engine, self.config, now)
        self._issued([c for c in closings if c.outcome == "issued"])
        return closings

    def _issued(self, closings: Sequence[Closing]) -> None:
        notify(self.engine, self.host, "hub_invoice_issued", [c.number for c in closings if c.number])

    def open_periods(self, now: datetime) -> list[Period]:
        """The periods of the accounts' schedules that hold ``now``."""
        return due.open_periods(self.config, now)

    def invoices(self, account: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Invoices and credit notes in issue order (drafts last), each as its JSON contract."""
        return list_invoices(self.engine, account, status)

    def invoice(self, ref: str) -> dict[str, Any]:
        """One invoice or credit note (``INV-2026-000001``, or a draft as ``draft:7``), as its JSON contract.

        :raises NotFound: no such invoice.
        """
        with self.engine.connect() as conn:
            row = find(conn, ref)
            if row is None:
                raise NotFound(f"no invoice numbered {ref!r} (see hub invoices list)")
            return invoice_json(conn, row)

    def pay(self, number: str, amount: Decimal, paid_on: date, reference: str | None = None, *,
            warn: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Record a payment of ``amount`` (the invoice's currency) dated ``paid_on`` (not after today); the
        invoice after it. ``warn`` is told of a payment dated before the invoice's issue. The plugins are
        told when it became paid."""
        try:
            doc = pay(self.engine, self.config, number, amount, paid_on, reference, warn=warn)
        except InvoicingError as exc:
            raise HubError(str(exc)) from exc
        if doc["status"] == "paid":
            notify(self.engine, self.host, "hub_invoice_paid", [number])
        return doc

    def credit_note(self, number: str, reason: str, lines: Sequence[int] | None = None, *,
                    issue_date: date | None = None) -> dict[str, Any]:
        """Issue a credit note for invoice ``number`` (all its lines, or those at ``lines``, 1-based): it settles
        what is open of the invoice, the rest becomes the account's credit balance. The plugins are told of
        the note, and of the invoice when the note made it paid."""
        try:
            doc = credit_note(self.engine, self.config, number, reason, lines, issue_date=issue_date)
        except InvoicingError as exc:
            raise HubError(str(exc)) from exc
        notify(self.engine, self.host, "hub_invoice_issued", [doc["number"]])
        if Decimal(doc["applied"]) > 0 and self.invoice(number)["status"] == "paid":
            notify(self.engine, self.host, "hub_invoice_paid", [number])
        return doc

    def add_charge(self, account: str, amount: Decimal, description: str) -> int:
        """A one-off charge on ``account``'s next invoice, in its currency; the charge's id."""
        self.account(account)
        try:
            return add_manual_charge(self.engine, self.config, account, amount, description)
        except InvoicingError as exc:
            raise HubError(str(exc)) from exc

    def credits(self, account: str, now: datetime | None = None) -> Ledger:
        """``account``'s credit grants (configured ones and credit balances) with their balances, and their
        history; an account invoiced through another has none of its own (a :class:`HubError` names it)."""
        self.billed_account(account, "hub credits")
        grants, history = ledger(self.engine, self.config, account, now)
        return Ledger(account, grants, history)

    # ------------------------------------------------------------------
    # render

    def render(self, numbers: Sequence[str] = (), *, every: bool = False, formats: Sequence[str] = (),
               force: bool = False, jobs: int | None = None, keep_documents: bool = False,
               progress: Callable[[int, int], None] | None = None,
               planned: Callable[[int], None] | None = None) -> list[Outcome]:
        """Render, validate and store the documents of ``numbers`` (or, with ``every``, of every issued
        invoice lacking one; with ``force`` too, of every issued invoice).

        :param formats: only these formats (default: every configured renderer's).
        :param jobs: processes that render (None: one per CPU; 1: in this process).
        :param planned: called once with how many invoices will be rendered.
        """
        if bool(numbers) == every:
            raise HubError("name the invoices to render (hub render INV-2026-000001) or pass --all")
        if jobs is not None and jobs < 1:
            raise HubError(f"--jobs must be 1 or more (1 renders in this process), not {jobs}")
        try:
            instances = renderer_instances(self.config, self.host)
            if every:
                chosen = [i for i in instances if not formats or i.format in formats]
                numbers = issued_numbers(self.engine) if force else pending(self.engine, chosen)
            if planned:
                planned(len(numbers))
            return render_many(self.engine, self.config, self.host, numbers, instances=instances,
                               formats=formats or None, force=force, jobs=render_jobs(jobs), progress=progress,
                               keep_documents=keep_documents)
        except RenderError as exc:
            raise HubError(str(exc)) from exc

    def render_pending(self, jobs: int | None = 1) -> list[Outcome]:
        """Render what every issued invoice still lacks (``hub run``: in this process by default)."""
        try:
            return render_pending(self.engine, self.config, self.host, jobs=jobs)
        except RenderError as exc:
            raise HubError(str(exc)) from exc

    def renderer_formats(self) -> list[str]:
        """The formats the configured renderers make, in the order they render."""
        try:
            return [i.format for i in renderer_instances(self.config, self.host)]
        except RenderError as exc:
            raise HubError(str(exc)) from exc

    def documents(self, number: str | None = None, *, rejected: bool = False) -> list[StoredDocument]:
        """The stored documents (of ``number``); only the rejected and failed ones with ``rejected``."""
        return list_documents(self.engine, number, flagged=rejected)

    # ------------------------------------------------------------------
    # deliver

    def deliver(self, now: datetime | None = None) -> list[Attempt]:
        """Attempt every due delivery of the outbox once."""
        return deliver_pending(self.engine, self.config, self.host, now=now)

    def deliveries(self, status: str | None = None, number: str | None = None) -> list[dict[str, Any]]:
        """The outbox, oldest first, as ``hub deliveries --json`` prints it."""
        return list_deliveries(self.engine, status, number)

    def delivery(self, delivery_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One delivery and every attempt of it.

        :raises NotFound: no such delivery.
        """
        found = [d for d in list_deliveries(self.engine) if d["id"] == delivery_id]
        if not found:
            raise NotFound(f"no delivery {delivery_id}")
        return found[0], attempts_of(self.engine, delivery_id)

    def retry(self, delivery_id: int) -> dict[str, Any]:
        """Queue a dead or blocked delivery again (same idempotency key), due now."""
        try:
            return retry(self.engine, delivery_id)
        except OutboxError as exc:
            raise HubError(str(exc)) from exc
