"""The typed records exchanged between the host and its plugins.

Everything a plugin returns to the hub, or receives from it, is one of these
frozen dataclasses. They are the contract for third-party authors: fields are
documented here and never grow a loosely shaped ``dict``-or-``list`` variant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable


# --------------------------------------------------------------------------
# Usage records


class Origin(NamedTuple):
    """Where a record or a rejected row came from, for quarantine and audit.

    ``location`` is source-specific (a file path, a Prometheus query, a
    domain UUID), ``line`` the physical line number where that makes sense
    (1-based, the first line of a row that spans lines), ``raw`` the
    original text.
    """

    location: str
    line: int | None = None
    raw: str | None = None


#: the labels of a record that has none
NO_LABELS: Mapping[str, str] = MappingProxyType({})


class UsageRecord(NamedTuple):
    """One immutable fact of usage, as a source reports it.

    (A named tuple rather than a frozen dataclass: sources build millions of
    them, and a frozen dataclass costs three times as much to create.)

    - ``record_id``: the source's stable identity of this fact; a later
      record with the same id replaces it (a running VM updated as it runs).
    - ``account``: the hub account id the usage belongs to.
    - ``resource_id``: what was used (a VM UUID, a pod uid, a volume id).
    - ``meter``: the name of a ``[[meters]]`` entry.
    - ``start`` / ``end``: whole UTC epoch seconds, half-open ``[start, end)``;
      ``end`` is ``None`` while the resource still runs.
    - ``quantity``: a non-negative exact decimal (vCPUs, GiB, bytes, jobs).
    - ``unit``: the unit the source measured in, if it says (checked
      against the meter's unit).
    - ``labels``: other attributes, kept for grouping and audit; treat it as
      read-only.
    - ``origin``: where the record came from, if the source knows.
    """

    record_id: str
    account: str
    resource_id: str
    meter: str
    start: int
    end: int | None
    quantity: Decimal
    unit: str | None = None
    labels: Mapping[str, str] = NO_LABELS
    origin: Origin | None = None


#: the label columns of records that have no labels
NO_LABEL_COLUMNS: Mapping[str, Sequence[str]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class UsageColumns:
    """Many usage records at once, as columns: the fast way to hand over
    large batches (a source building millions of :class:`UsageRecord`
    objects spends more on them than the hub spends storing the records).

    Row ``i`` is the record ``record_id[i], account[i], ..., end[i]`` with
    the meaning of :class:`UsageRecord`'s fields; every column has the same
    length. The hub checks the columns as it checks records (a bad row is
    quarantined with its origin, the others are stored).

    - ``record_id``, ``account``, ``resource_id``, ``meter``: strings.
    - ``start`` / ``end``: whole UTC epoch seconds; ``end`` ``None`` while
      the resource runs.
    - ``quantity_units`` / ``quantity_nanos``: the exact quantity
      ``units + nanos * 10**-9`` as two integers, ``0 <= units < 10**15``
      and ``0 <= nanos < 10**9`` (:func:`hub.quantities.quantity_parts`
      turns decimal text into them).
    - ``unit``: the unit of each record (``None`` for none), or ``None``
      when no record says.
    - ``labels``: label name -> the column of its values; an empty string
      means the record does not have that label.
    - ``location`` / ``line``: the origin of the records: where they all
      came from, and the line of each (or ``None``), as in :class:`Origin`.
    """

    record_id: Sequence[str]
    account: Sequence[str]
    resource_id: Sequence[str]
    meter: Sequence[str]
    start: Sequence[int]
    end: Sequence[int | None]
    quantity_units: Sequence[int]
    quantity_nanos: Sequence[int]
    unit: Sequence[str | None] | None = None
    labels: Mapping[str, Sequence[str]] = field(default_factory=lambda: NO_LABEL_COLUMNS)
    location: str | None = None
    line: Sequence[int] | None = None

    def __len__(self) -> int:
        return len(self.record_id)


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A piece of input a source could not turn into a record.

    The hub quarantines it: it is stored with its origin and every error
    found in it, shown by ``hub quarantine list``, and resolved when a later
    pull imports a fixed version.
    """

    origin: Origin
    errors: tuple[str, ...]
    record_id: str | None = None


@dataclass(frozen=True, slots=True)
class PullBatch:
    """A unit of work a source hands to the hub during a pull.

    The hub stores ``records`` (upserted by record id), quarantines
    ``rejected`` and saves ``checkpoint`` in one transaction, so a crash
    between two batches loses nothing and doubles nothing: the next pull
    resumes from the last saved checkpoint.

    - ``checkpoint``: the source's whole resume state after this batch, a
      JSON-serialisable mapping; ``None`` keeps the previous one.
    - ``superseded``: ``(location, first_line)`` pairs for input being read
      again from ``first_line`` on (a file re-read from line 1, or from
      where its checkpoint stopped); the open quarantine entries of that
      location from that line on are closed before this batch is stored,
      since the re-read reports them afresh.
    - ``progress``: ``(done, total)`` in any unit, for the progress bar.
    - ``columns``: more records, as :class:`UsageColumns`; they count as
      coming after ``records`` (for a record id in both, the column row
      wins).
    """

    records: tuple[UsageRecord, ...] = ()
    rejected: tuple[RejectedRow, ...] = ()
    checkpoint: Mapping[str, Any] | None = None
    superseded: tuple[tuple[str, int], ...] = ()
    progress: tuple[int, int] | None = None
    columns: UsageColumns | None = None


# --------------------------------------------------------------------------
# What the host gives a plugin instance


class Secret:
    """A secret read from the environment; it never shows in reprs or logs."""

    __slots__ = ("_value", "env")

    def __init__(self, env: str, value: str) -> None:
        self.env = env
        self._value = value

    def reveal(self) -> str:
        """Return the secret's value; call it only where it is sent."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r}, value='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class InstanceConfig:
    """The validated configuration of one plugin instance.

    - ``name``: the instance's name in hub.toml (``[[sources]] name``).
    - ``type``: the plugin type name it instantiates.
    - ``options``: its keys, validated against the type's JSON schema, with
      the schema's defaults filled in. Keys ending in ``_env`` name
      environment variables; read them with :meth:`secret`.
    - ``base_dir``: the directory of hub.toml; resolve relative paths
      against it with :meth:`path`.
    """

    name: str
    type: str
    options: Mapping[str, Any]
    base_dir: Path

    def path(self, value: str) -> Path:
        """Resolve a path from the configuration relative to hub.toml."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def secret(self, key: str) -> Secret:
        """The secret named by option ``<key>_env`` (``password`` reads the
        variable named in ``password_env``). Raises ``KeyError`` naming the
        variable, never a value, when it is not set."""
        env = self.options[f"{key}_env"]
        value = os.environ.get(env)
        if value is None:
            raise KeyError(f"environment variable {env} is not set")
        return Secret(env, value)


@dataclass(frozen=True)
class PullContext:
    """What the hub tells a source at the start of a pull.

    - ``meters``: meter name -> its unit (``None`` when the meter has none).
    - ``accounts``: the ids of the accounts the hub knows.
    - ``now``: the pull's reference time, in UTC epoch seconds.
    """

    meters: Mapping[str, str | None]
    accounts: frozenset[str]
    now: int

    def reference_errors(self, account: str, meter: str, unit: str | None = None) -> list[str]:
        """The errors of a record's references, worded the same for every
        source: unknown account, unknown meter, unit not the meter's."""
        errors = []
        if account and account not in self.accounts:
            errors.append(f"unknown account {account!r}")
        if meter:
            if meter not in self.meters:
                errors.append(f"unknown meter {meter!r}")
            elif unit and self.meters[meter] and unit != self.meters[meter]:
                errors.append(f"unit {unit!r} is not the unit of meter {meter!r} ({self.meters[meter]!r})")
        return errors


# --------------------------------------------------------------------------
# Plugin types, as returned by the registration hooks


@runtime_checkable
class UsageSource(Protocol):
    """An instance of a source type, built by its factory."""

    def pull(self, checkpoint: Mapping[str, Any] | None, ctx: PullContext) -> Iterator[PullBatch]:
        """Yield batches of usage since ``checkpoint`` (``None`` on the first
        pull). Each batch carries the checkpoint to resume after it."""
        ...


@dataclass(frozen=True)
class PluginType:
    """What every registration record has.

    - ``name``: the type name used in hub.toml (``type = "csv"``); unique
      across all installed plugins of the same kind.
    - ``description``: one line for ``hub plugins``.
    - ``config_schema``: a JSON schema (draft 2020-12) of the instance's
      keys, other than the host's own (``name``, ``type``, ``interval``).
    """

    name: str
    description: str
    config_schema: Mapping[str, Any]


@dataclass(frozen=True)
class SourceType(PluginType):
    """A usage-source type. ``factory(config)`` returns a :class:`UsageSource`."""

    factory: Callable[[InstanceConfig], UsageSource]
    kind = "source"


@dataclass(frozen=True)
class ExporterType(PluginType):
    """An exporter type. ``factory(config)`` returns an :class:`Exporter`.

    - ``events``: the events it can deliver (:data:`EVENTS`); an instance
      may narrow them with its ``events`` key. Default: issued invoices and
      credit notes.
    """

    factory: Callable[[InstanceConfig], Exporter]
    kind = "exporter"
    events: tuple[str, ...] = ("invoice.issued", "credit_note.issued")


# --------------------------------------------------------------------------
# Exporters: an outbox row in, a delivery at the target out

#: the events an exporter can deliver (``invoice.overdue``: a reminder, once per ``[dunning] after_days`` step)
EVENTS = ("invoice.issued", "credit_note.issued", "invoice.paid", "invoice.overdue")


@dataclass(frozen=True)
class Delivery:
    """One delivery an exporter is asked to make.

    - ``key``: the idempotency key, the same on every attempt of this
      delivery (after a crash too): send it to the target (a webhook id, a
      QuickBooks ``requestid``, a Message-ID) so a retry never makes a
      second copy there.
    - ``event``: one of :data:`EVENTS`.
    - ``invoice``: the invoice or credit note, as ``hub invoices show
      NUMBER --json`` prints it (``status`` and ``payments`` as of now).
    - ``documents``: its stored documents by format (those the exporter
      lists in :attr:`Exporter.formats`, rendered and validated first; a
      delivery whose document was rejected is never attempted).
    - ``attempt``: 1 on the first try.
    - ``recipient``: the account's ``email`` (None if it has none).
    - ``created_at``: when the event happened (the delivery was written
      with the invoice or payment): the same on every attempt.
    - ``occasion``: ``""`` for the event itself, ``"resend:N"`` for the n-th
      resend (``hub deliveries resend``: a key of its own), ``"overdue:D"``
      for the reminder of step D (``invoice.overdue``).
    - ``reminder``: for ``invoice.overdue`` only: ``step`` (the ``[dunning]
      after_days`` step), ``as_of`` (the ISO day it was due on),
      ``due_date``, ``days_overdue``, ``open_balance`` (as of the attempt)
      and ``currency``.
    """

    key: str
    event: str
    invoice: Mapping[str, Any]
    documents: Mapping[str, Document]
    attempt: int
    recipient: str | None = None
    created_at: datetime | None = None
    occasion: str = ""
    reminder: Mapping[str, Any] | None = None


class DeliveryError(Exception):
    """Raised by :meth:`Exporter.deliver` when the target did not take it.

    - ``permanent``: retrying cannot help (a 4xx other than 408 and 429, a
      refused recipient): the delivery is dead at once.
    - ``retry_after``: seconds the target asked to wait (``Retry-After``);
      the next attempt is not sooner.
    - ``disable``: the target said to stop (a webhook's 410): the delivery is
      dead and the message says so.
    """

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None,
                 disable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent or disable
        self.retry_after = retry_after
        self.disable = disable


class Exporter(Protocol):
    """An instance of an exporter type, built by its factory.

    - ``formats``: the document formats it sends (``("pdf", "html")`` for
      e-mail); may be empty.
    """

    formats: tuple[str, ...]

    def deliver(self, delivery: Delivery) -> str | None:
        """Deliver once; return the target's id for it (a message id, the
        remote invoice id) or None.

        Called again with the same ``delivery.key`` after a failure or a
        crash, so it must be idempotent at the target.

        :raises DeliveryError: the target refused or could not be reached.
        :raises: anything else counts as a transient failure.
        """
        ...


@dataclass(frozen=True)
class RendererType(PluginType):
    """A renderer type. ``factory(config)`` returns a :class:`Renderer`."""

    factory: Callable[[InstanceConfig], Renderer]
    kind = "renderer"


# --------------------------------------------------------------------------
# Renderers: an issued invoice in, a document out


@dataclass(frozen=True)
class Document:
    """A rendered document, stored with its invoice and delivered as is.

    - ``file_name``: the name it is saved and attached under
      (``INV-2026-000001.pdf``), without any directory.
    - ``media_type``: ``text/html; charset=utf-8``, ``application/pdf``,
      ``application/xml``...
    - ``content``: the bytes.
    """

    file_name: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class RuleFailure:
    """One rule a document breaks.

    - ``rule``: the rule's identifier as its rule set names it
      (``BR-CO-16``, ``PEPPOL-EN16931-R003``), or ``XSD`` for a schema error.
    - ``message``: what is wrong, in the rule set's words.
    - ``location``: where in the document (an XPath or a line), if known.
    """

    rule: str
    message: str
    location: str | None = None


class DocumentRejected(Exception):
    """Raised by :meth:`Renderer.render` when the document it made fails
    validation: the hub stores no document, records the failures with their
    rule ids, flags the invoice for the operator and never delivers it."""

    def __init__(self, failures: Sequence[RuleFailure]) -> None:
        self.failures = tuple(failures)
        super().__init__("; ".join(f"{f.rule}: {f.message}" for f in self.failures) or "rejected")


@dataclass(frozen=True)
class RenderContext:
    """What the hub hands a renderer besides the invoice.

    - ``rendered``: this invoice's documents made before this one, by
      format (a renderer lists the formats it needs in
      :attr:`Renderer.requires`; a Factur-X renderer reads ``"pdf"``).
    - ``template_dirs``: folders searched first for templates, so an
      operator overrides a template without touching the package
      (``config/templates/`` next to hub.toml).
    """

    rendered: Mapping[str, Document] = field(default_factory=dict)
    template_dirs: tuple[Path, ...] = ()


class Renderer(Protocol):
    """An instance of a renderer type, built by its factory.

    - ``format``: what it makes (``html``, ``pdf``, ``ubl``, ``facturx``);
      ``hub render --format`` selects by it. One instance per format is
      used for an invoice.
    - ``requires``: formats that must be rendered first (handed over in
      :attr:`RenderContext.rendered`); may be empty.
    """

    format: str
    requires: tuple[str, ...]

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        """The document of ``invoice`` (the issued invoice or credit note,
        exactly as ``hub invoices show NUMBER --json`` prints it: the
        contract of ``schemas/invoice.schema.json``, with its ``seller``,
        ``buyer``, ``members`` and ``products`` as they were at issue).

        Must be deterministic: the same invoice renders to the same bytes,
        every time (no clock, no random ids; dates come from the invoice).

        :raises DocumentRejected: when the document fails its validation.
        :raises: anything else is recorded as a failure of this renderer.
        """
        ...


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A failure inside plugin code, recorded as data instead of raised.

    - ``plugin``: the plugin (entry-point name) or instance that failed.
    - ``hook``: the hook or method that raised (``load``, ``pull``...).
    - ``message``: the exception, as ``Type: text``.
    """

    plugin: str
    hook: str
    message: str
