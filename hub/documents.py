"""The render stage: issued invoices in, stored documents out.

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

Many invoices (``hub render --all``, ``hub run``) render in one process per
CPU (:func:`render_many`, ``--jobs``): forked workers render, this process
reads the invoices and stores the documents, each invoice in one
transaction, in the same order and with the same rows as one process.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from hub.config.model import Config
from hub.host import Host
from hub.invoices import invoice_json
from hub.plugin.types import Document, DocumentRejected, InstanceConfig, RenderContext, Renderer, RuleFailure
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
    from hub.config.loader import _fill_defaults

    registered = host.type_of("renderer", type_name)
    return _fill_defaults(registered.type.config_schema, {}) if registered else {}


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
    invoice_id, invoice, kept = _load(engine, number, force=force)
    chosen = list(instances if instances is not None else renderer_instances(config, host))
    if formats is not None:
        chosen = _with_needs(chosen, set(formats))
    out: list[Outcome] = []
    for name, outcome in _render_formats(host, chosen, number, invoice, kept, template_dirs(config)):
        if name is not None:
            _save(engine, invoice_id, name, outcome)
        out.append(outcome)
    return out


def _load(engine: Engine, number: str, *, force: bool) -> tuple[int, dict[str, Any], dict[str, tuple[Any, ...]]]:
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


def _render_formats(host: Host, chosen: Sequence[Instance], number: str, invoice: Mapping[str, Any],
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


def _with_needs(instances: Sequence[Instance], formats: set[str]) -> list[Instance]:
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


def _save(engine: Engine, invoice_id: int, renderer: str, outcome: Outcome) -> None:
    _save_all(engine, invoice_id, [(renderer, outcome)])


def _save_all(engine: Engine, invoice_id: int, made: Sequence[tuple[str, Outcome]]) -> None:
    """Store the outcomes of one invoice, each replacing its format's row,
    in one transaction: a killed render leaves all of them or none."""
    with engine.begin() as conn:
        for renderer, outcome in made:
            doc = outcome.document
            failures = json.dumps([{"rule": f.rule, "message": f.message, "location": f.location}
                                   for f in outcome.failures]) if outcome.failures else None
            conn.execute(delete(documents).where(documents.c.invoice_id == invoice_id,
                                                 documents.c.format == outcome.format))
            conn.execute(insert(documents).values(
                invoice_id=invoice_id, format=outcome.format, renderer=renderer, status=outcome.status,
                file_name=outcome.file_name, media_type=doc.media_type if doc else None, sha256=outcome.sha256,
                size=outcome.size, content=doc.content if doc else None, failures=failures,
                rendered_at=datetime.now(timezone.utc)))


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


def render_pending(engine: Engine, config: Config, host: Host, *, formats: Iterable[str] | None = None,
                   progress: Callable[[int, int], None] | None = None, jobs: int | None = None,
                   keep_documents: bool = False) -> list[Outcome]:
    """Render every issued invoice that lacks a document (:func:`pending`),
    in ``jobs`` processes (:func:`render_many`)."""
    instances = renderer_instances(config, host)
    chosen = _with_needs(instances, set(formats)) if formats is not None else instances
    numbers = pending(engine, chosen)
    return render_many(engine, config, host, numbers, instances=chosen, progress=progress, jobs=jobs,
                       keep_documents=keep_documents)


#: invoices handed to the workers ahead of the one being stored, per worker
_AHEAD = 4


def render_jobs(jobs: int | None) -> int:
    """The number of render processes ``jobs`` asks for: None is one per CPU.

    :raises RenderError: ``jobs`` is below 1."""
    if jobs is None:
        return os.cpu_count() or 1
    if jobs < 1:
        raise RenderError(f"jobs must be 1 or more (1 renders in this process), not {jobs}")
    return jobs


def render_many(engine: Engine, config: Config, host: Host, numbers: Sequence[str], *,
                instances: Sequence[Instance] | None = None, formats: Iterable[str] | None = None,
                force: bool = False, jobs: int | None = None, progress: Callable[[int, int], None] | None = None,
                keep_documents: bool = True) -> list[Outcome]:
    """:func:`render_invoice` for each of ``numbers``, their outcomes in
    that order, ``progress(done, total)`` after each invoice.

    ``jobs``: processes that render (None: one per CPU; 1: this process,
    one invoice after another). With more, this process reads each
    invoice, forked workers render it (no database in them) and this
    process stores its documents, one transaction per invoice, in the
    order of ``numbers``: the same rows as one process would store, and a
    killed run leaves whole invoices stored and the rest pending (the
    workers end with this process). The workers are forked, so they have
    this process's renderers (in-process plugins too) without building
    them again, and start no thread (see :func:`_end_with_parent`). An
    in-memory SQLite database renders in this process (the workers would
    not see it), and so do a platform without ``fork`` and a daemonic
    process.
    ``keep_documents``: False drops the documents' bytes from the outcomes
    (they are stored; 10,000 invoices' documents would fill the memory).

    :raises RenderError: a number is not an issued invoice, the renderers
        cannot run, or a worker died (what was stored before stays).
    """
    chosen = list(instances if instances is not None else renderer_instances(config, host))
    if formats is not None:
        chosen = _with_needs(chosen, set(formats))
    workers = min(render_jobs(jobs), len(numbers))
    total = len(numbers)
    out: list[Outcome] = []
    stored = 0

    def done(outcomes: list[Outcome]) -> None:
        nonlocal stored
        stored += 1
        out.extend(outcomes if keep_documents else [replace(o, document=None) for o in outcomes])
        if progress is not None:
            progress(stored, total)

    if workers <= 1 or not _forkable(engine):
        for number in numbers:
            done(render_invoice(engine, config, host, number, instances=chosen, force=force))
        return out

    dirs = template_dirs(config)
    context = multiprocessing.get_context("fork")
    ahead: deque[tuple[str, int, Future[Any]]] = deque()
    todo = iter(numbers)
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start,
                                 initargs=(engine, host, chosen, dirs, os.getpid())) as pool:
            def submit() -> None:
                number = next(todo, None)
                if number is not None:
                    invoice_id, invoice, kept = _load(engine, number, force=force)
                    ahead.append((number, invoice_id, pool.submit(_worker_render, number, invoice, kept)))

            for _ in range(workers * _AHEAD):
                submit()
            while ahead:
                number, invoice_id, future = ahead.popleft()
                made, failures = future.result()
                host.failures.extend(failures)
                _save_all(engine, invoice_id, [(name, o) for name, o in made if name is not None])
                done([o for _, o in made])
                submit()
    except BrokenProcessPool as exc:
        raise RenderError(f"a render worker died ({exc}); {stored} of {total} invoices were "
                          "stored, render again to finish") from exc
    return out


def _forkable(engine: Engine) -> bool:
    """Whether render workers can be forked for ``engine``'s database."""
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return False  # a daemonic process (a pool's worker) may not have children
    url = engine.url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


_worker: dict[str, Any] = {}


def _worker_start(engine: Engine, host: Host, chosen: Sequence[Instance], dirs: tuple[Path, ...],
                  parent: int) -> None:
    """In a forked render worker: forget the parent's database connections
    (they stay the parent's), keep its host and renderers, and end with
    the parent (killed, it would leave its workers waiting for work)."""
    engine.dispose(close=False)
    _worker.update(host=host, chosen=chosen, dirs=dirs)
    _end_with_parent(parent)


def _end_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent ends
    (Linux ``PR_SET_PDEATHSIG``; elsewhere nothing). Not a watchdog
    thread: with a thread started in a forked child, Saxon (saxonche, a
    GraalVM native image) crashes there when the parent had used it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it ended before the call
        os._exit(1)


def _worker_render(number: str, invoice: Mapping[str, Any],
                   kept: Mapping[str, tuple[Any, ...]]) -> tuple[list[tuple[str | None, Outcome]], list[Any]]:
    """Render one invoice in a worker: its outcomes, and the plugin
    failures recorded meanwhile (the parent's host gets them)."""
    host = _worker["host"]
    before = len(host.failures)
    made = _render_formats(host, _worker["chosen"], number, invoice, kept, _worker["dirs"])
    failures = host.failures[before:]
    del host.failures[before:]
    return made, failures


@dataclass(frozen=True)
class StoredDocument:
    number: str
    format: str
    status: str
    renderer: str
    file_name: str | None
    media_type: str | None
    sha256: str | None
    size: int | None
    failures: list[dict[str, Any]]
    rendered_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "format": self.format, "status": self.status, "renderer": self.renderer,
                "file_name": self.file_name, "media_type": self.media_type, "sha256": self.sha256,
                "size": self.size, "failures": self.failures, "rendered_at": self.rendered_at.isoformat()}


def list_documents(engine: Engine, number: str | None = None, *, flagged: bool = False) -> list[StoredDocument]:
    """Stored documents and rejections (of ``number``; ``flagged``: only
    rejected and failed ones), by invoice then format."""
    q = (select(invoices.c.number, documents.c.format, documents.c.status, documents.c.renderer,
                documents.c.file_name, documents.c.media_type, documents.c.sha256, documents.c.size,
                documents.c.failures, documents.c.rendered_at)
         .join(invoices, invoices.c.id == documents.c.invoice_id).order_by(invoices.c.id, documents.c.format))
    if number is not None:
        q = q.where(invoices.c.number == number)
    if flagged:
        q = q.where(documents.c.status != STORED)
    with engine.connect() as conn:
        return [StoredDocument(r.number, r.format, r.status, r.renderer, r.file_name, r.media_type, r.sha256, r.size,
                               json.loads(r.failures) if r.failures else [], r.rendered_at) for r in conn.execute(q)]


def read_document(engine: Engine, number: str, fmt: str) -> Document | None:
    """The stored document of ``number`` in ``fmt``, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(documents.c.file_name, documents.c.media_type, documents.c.content)
                           .join(invoices, invoices.c.id == documents.c.invoice_id)
                           .where(invoices.c.number == number, documents.c.format == fmt,
                                  documents.c.status == STORED)).first()
    return Document(row.file_name, row.media_type, row.content) if row else None
