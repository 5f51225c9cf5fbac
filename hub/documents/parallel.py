"""Rendering many invoices (``hub render --all``, ``hub run``): in one
process per CPU (:func:`render_many`, ``--jobs``).

Forked workers render; this process reads the invoices and stores the
documents, each invoice in one transaction, in the same order and with the
same rows as one process. It owns the worker processes; what rendering one
invoice means is :mod:`hub.documents.render`'s, and no database is used in
a worker.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hub.config.model import Config
from hub.documents.render import (
    Instance,
    Outcome,
    RenderError,
    load,
    pending,
    render_formats,
    render_invoice,
    renderer_instances,
    save_all,
    template_dirs,
    with_needs,
)
from hub.host import Host


def render_pending(engine: Engine, config: Config, host: Host, *, formats: Iterable[str] | None = None,
                   progress: Callable[[int, int], None] | None = None, jobs: int | None = None,
                   keep_documents: bool = False) -> list[Outcome]:
    """Render every issued invoice that lacks a document (:func:`pending`),
    in ``jobs`` processes (:func:`render_many`)."""
    instances = renderer_instances(config, host)
    chosen = with_needs(instances, set(formats)) if formats is not None else instances
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
        chosen = with_needs(chosen, set(formats))
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
                    invoice_id, invoice, kept = load(engine, number, force=force)
                    ahead.append((number, invoice_id, pool.submit(_worker_render, number, invoice, kept)))

            for _ in range(workers * _AHEAD):
                submit()
            while ahead:
                number, invoice_id, future = ahead.popleft()
                made, failures = future.result()
                host.failures.extend(failures)
                saved = iter(save_all(engine, invoice_id, [(name, o) for name, o in made if name is not None],
                                      force=force))
                done([o if name is None else next(saved) for name, o in made])
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
    made = render_formats(host, _worker["chosen"], number, invoice, kept, _worker["dirs"])
    failures = host.failures[before:]
    del host.failures[before:]
    return made, failures
