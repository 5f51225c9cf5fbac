"""Rendering one invoice: which renderers run, in what order, and the
``documents`` row each (invoice, format) gets.

Which renderers run: every ``[[renderers]]`` instance of hub.toml; when
there is none, every installed renderer type with its default
configuration (one per format). A renderer may need another format first
(Factur-X embeds its XML in the PDF): formats run in dependency order and
each gets the documents made before it.

Each (invoice, format) has one row in ``documents``: ``stored`` with the
bytes, their SHA-256, file name and media type; ``rejected`` with the rules
the document broke (the invoice is then flagged: ``hub documents
--flagged``, and the outbox never delivers it); or ``failed`` with the
renderer's error. Rendering is idempotent: a stored document is kept unless
``force`` asks to render again (renderers are deterministic, so the bytes
only change when the template or the renderer did).

It reads the invoice's JSON through the read model (:mod:`hub.invoices`)
and calls plugins only through the host; it must not know how invoices are
made (the close stage) or delivered (the outbox).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.config.model import Config
from hub.config.schema import fill_defaults
from hub.host import Host
from hub.invoices import invoice_json
from hub.plugin.types import (
    Document,
    DocumentRejected,
    InstanceConfig,
    RenderContext,
    Renderer,
    RuleFailure,
)
from hub.store.tables import documents, invoices

STORED, REJECTED, FAILED = "stored", "rejected", "failed"

#: where an operator puts templates that override the renderers' own
TEMPLATE_DIR = Path("config") / "templates"


class RenderError(Exception):
    """The renderers cannot run: a configuration problem, not a document's."""


@dataclass(frozen=True)
class Instance:
    """A renderer instance: its name in hub.toml (or its type's, by
    default), its type, and the object its factory built."""

    name: str
    type: str
    renderer: Renderer

    @property
    def format(self) -> str:
        return str(self.renderer.format)


@dataclass(frozen=True)
class Outcome:
    """What rendering one format of one invoice did.

    ``status``: ``stored`` (rendered now), ``kept`` (stored before, not
    rendered again), ``rejected`` or ``failed``."""

    number: str
    format: str
    status: str
    file_name: str | None = None
    sha256: str | None = None
    size: int | None = None
    failures: tuple[RuleFailure, ...] = ()
    document: Document | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status in (STORED, "kept")


def renderer_instances(config: Config, host: Host) -> list[Instance]:
    """The renderer instances to use, in dependency order.

    :raises RenderError: two instances of one format, a format that needs
        one no instance makes, a cycle, or a factory that failed.
    """
    if config.renderers:
        configs = list(config.renderers)
    else:
        configs = [InstanceConfig(name=n, type=n, options=_defaults(host, n), base_dir=config.base_dir)
                   for n in host.names("renderer")]
    built: dict[str, Instance] = {}
    for ic in configs:
        registered = host.type_of("renderer", ic.type)
        if registered is None:  # the config loader reports it; defaults come from the host
            raise RenderError(f"renderers {ic.name!r}: unknown renderer type {ic.type!r}")
        renderer = host.guard(ic.name, "factory", registered.type.factory, ic)
        if renderer is None:
            raise RenderError(f"renderer {ic.name!r} could not be built: {host.failures[-1].message}")
        instance = Instance(ic.name, ic.type, renderer)
        if instance.format in built:
            raise RenderError(f"renderers {built[instance.format].name!r} and {ic.name!r} both make "
                              f"{instance.format!r}: keep one")
        built[instance.format] = instance
    return _ordered(built)


def _defaults(host: Host, type_name: str) -> dict[str, Any]:
    registered = host.type_of("renderer", type_name)
    return fill_defaults(registered.type.config_schema, {}) if registered else {}


def _ordered(built: Mapping[str, Instance]) -> list[Instance]:
    out: list[Instance] = []
    state: dict[str, str] = {}

    def visit(fmt: str, chain: tuple[str, ...]) -> None:
        if state.get(fmt) == "done":
            return
        if state.get(fmt) == "visiting":
            raise RenderError(f"renderers need each other in a cycle: {' -> '.join((*chain, fmt))}")
        state[fmt] = "visiting"
        for need in built[fmt].renderer.requires:
            if need not in built:
                raise RenderError(f"renderer {built[fmt].name!r} ({fmt}) needs a {need!r} renderer; none is configured")
            visit(need, (*chain, fmt))
        state[fmt] = "done"
        out.append(built[fmt])

    for fmt in sorted(built):
        visit(fmt, ())
    return out


def template_dirs(config: Config) -> tuple[Path, ...]:
    folder = config.base_dir / TEMPLATE_DIR
    return (folder,) if folder.is_dir() else ()


def _attempt(renderer: Renderer, invoice: Mapping[str, Any], context: RenderContext) -> Document | DocumentRejected:
    try:
        document = renderer.render(invoice, context)
    except DocumentRejected as exc:
        return exc
    if not isinstance(document, Document):
        raise TypeError(f"render() returned {type(document).__name__}, not a hub.plugin_types.Document")
    if not document.file_name or "/" in document.file_name or "\\" in document.file_name:
        raise ValueError(f"file name {document.file_name!r} is empty or has a directory")
    return document


def render_invoice(engine: Engine, config: Config, host: Host, number: str, *,
                   instances: Sequence[Instance] | None = None, formats: Iterable[str] | None = None,
                   force: bool = False) -> list[Outcome]:
    """Render the issued invoice or credit note ``number`` in each format
    (``formats``: only these, plus what they need) and store the documents.

    :raises RenderError: ``number`` is not an issued invoice, or the
        renderers cannot run (see :func:`renderer_instances`).
    """
    invoice_id, invoice, kept = load(engine, number, force=force)
    chosen = list(instances if instances is not None else renderer_instances(config, host))
    if formats is not None:
        chosen = with_needs(chosen, set(formats))
    out: list[Outcome] = []
    for name, outcome in render_formats(host, chosen, number, invoice, kept, template_dirs(config)):
        if name is not None:
            outcome = _save(engine, invoice_id, name, outcome, force=force)
        out.append(outcome)
    return out


def load(engine: Engine, number: str, *, force: bool) -> tuple[int, dict[str, Any], dict[str, tuple[Any, ...]]]:
    """The invoice's id, its contract JSON and (unless ``force``) its stored
    documents by format: (file name, media type, content, sha256, size)."""
    with engine.connect() as conn:
        row = conn.execute(select(invoices).where(invoices.c.number == number)).first()
        if row is None:
            raise RenderError(f"no issued invoice or credit note is numbered {number!r}")
        invoice = invoice_json(conn, row)
        kept = {} if force else {
            r.format: (r.file_name, r.media_type, r.content, r.sha256, r.size)
            for r in conn.execute(select(documents).where(documents.c.invoice_id == row.id,
                                                          documents.c.status == STORED))}
    return row.id, invoice, kept


def render_formats(host: Host, chosen: Sequence[Instance], number: str, invoice: Mapping[str, Any],
                    kept: Mapping[str, tuple[Any, ...]],
                    dirs: tuple[Path, ...]) -> list[tuple[str | None, Outcome]]:
    """Render ``invoice`` with each of ``chosen`` (in order) unless its
    format is in ``kept``; each outcome with the instance name to store it
    under (None: kept, nothing to store). No database: this part runs in
    the render workers."""
    context_docs: dict[str, Document] = {}
    out: list[tuple[str | None, Outcome]] = []
    for inst in chosen:
        fmt = inst.format
        have = kept.get(fmt)
        if have is not None:
            file_name, media_type, content, sha256, size = have
            context_docs[fmt] = Document(file_name, media_type, content)
            out.append((None, Outcome(number, fmt, "kept", file_name, sha256, size, document=context_docs[fmt])))
            continue
        missing = [need for need in inst.renderer.requires if need not in context_docs]
        if missing:
            outcome = Outcome(number, fmt, FAILED, failures=(RuleFailure(
                "needs", f"needs the {', '.join(missing)} document, which was not made"),))
        else:
            before = len(host.failures)
            result = host.guard(inst.name, "render", _attempt, inst.renderer, invoice,
                                RenderContext(rendered=dict(context_docs), template_dirs=dirs))
            if isinstance(result, Document):
                digest = hashlib.sha256(result.content).hexdigest()
                context_docs[fmt] = result
                outcome = Outcome(number, fmt, STORED, result.file_name, digest, len(result.content),
                                  document=result)
            elif isinstance(result, DocumentRejected):
                outcome = Outcome(number, fmt, REJECTED, failures=result.failures)
            else:
                message = host.failures[-1].message if len(host.failures) > before else "render() returned nothing"
                outcome = Outcome(number, fmt, FAILED, failures=(RuleFailure("error", message),))
        out.append((inst.name, outcome))
    return out


def with_needs(instances: Sequence[Instance], formats: set[str]) -> list[Instance]:
    by_format = {i.format: i for i in instances}
    unknown = sorted(formats - set(by_format))
    if unknown:
        raise RenderError(f"no renderer makes {', '.join(map(repr, unknown))}; "
                          f"available: {', '.join(sorted(by_format)) or 'none'}")
    wanted: set[str] = set()
    todo = list(formats)
    while todo:
        fmt = todo.pop()
        if fmt not in wanted:
            wanted.add(fmt)
            todo.extend(by_format[fmt].renderer.requires)
    return [i for i in instances if i.format in wanted]


def _save(engine: Engine, invoice_id: int, renderer: str, outcome: Outcome, *, force: bool) -> Outcome:
    return save_all(engine, invoice_id, [(renderer, outcome)], force=force)[0]


def save_all(engine: Engine, invoice_id: int, made: Sequence[tuple[str, Outcome]], *,
             force: bool = False) -> list[Outcome]:
    """Store the outcomes of one invoice, each replacing its format's row,
    in one transaction: a killed render leaves all of them or none.

    Each row is written with one insert-or-update (``INSERT ... ON
    CONFLICT``), so that another worker storing the same invoice at the
    same time (two ``hub run`` on one database) is no error. Unless
    ``force``, a document that is stored already is kept: it is another
    worker's, which rendered it since this one looked, and this outcome
    becomes ``kept`` with that document (renderers are deterministic: the
    same bytes). A rejected or failed row is replaced by the new try.
    Returns the outcomes as stored.
    """
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    out = []
    with engine.begin() as conn:
        for renderer, outcome in made:
            doc = outcome.document
            failures = json.dumps([{"rule": f.rule, "message": f.message, "location": f.location}
                                   for f in outcome.failures]) if outcome.failures else None
            row = dict(invoice_id=invoice_id, format=outcome.format, renderer=renderer, status=outcome.status,
                       file_name=outcome.file_name, media_type=doc.media_type if doc else None, sha256=outcome.sha256,
                       size=outcome.size, content=doc.content if doc else None, failures=failures,
                       rendered_at=datetime.now(timezone.utc))
            statement = dialect.insert(documents).values(**row)
            statement = statement.on_conflict_do_update(
                index_elements=[documents.c.invoice_id, documents.c.format],
                set_={name: statement.excluded[name] for name in row if name not in ("invoice_id", "format")},
                where=None if force else documents.c.status != STORED,
            ).returning(documents.c.id)
            if conn.execute(statement).first() is not None:
                out.append(outcome)
                continue
            # another worker's stored document, kept
            have = conn.execute(select(documents.c.file_name, documents.c.media_type, documents.c.content,
                                       documents.c.sha256, documents.c.size)
                                .where(documents.c.invoice_id == invoice_id,
                                       documents.c.format == outcome.format)).one()
            out.append(Outcome(outcome.number, outcome.format, "kept", have.file_name, have.sha256, have.size,
                               document=Document(have.file_name, have.media_type, have.content)))
    return out


def pending(engine: Engine, instances: Sequence[Instance]) -> list[str]:
    """Numbers of issued invoices and credit notes that lack a stored
    document of some format (rejected and failed ones included: a fixed
    renderer or template gets another try), in issue order."""
    formats = {i.format for i in instances}
    with engine.connect() as conn:
        have: dict[int, set[str]] = {}
        for invoice_id, fmt in conn.execute(select(documents.c.invoice_id, documents.c.format)
                                            .where(documents.c.status == STORED)):
            have.setdefault(invoice_id, set()).add(fmt)
        rows = conn.execute(select(invoices.c.id, invoices.c.number).where(invoices.c.number.is_not(None))
                            .order_by(invoices.c.issued_at, invoices.c.id)).all()
    return [r.number for r in rows if not formats <= have.get(r.id, set())]
