"""Two workers rendering one invoice at once (two ``hub run --once`` on one
database): the one that stores second keeps the document the first stored
and reports it ``kept``; it is no error. On PostgreSQL the second used to
fail with ``IntegrityError ... uq_documents_invoice_id_format``.

The other worker is a transaction of the test that stored the invoice's
document and has not committed yet. On PostgreSQL the render stage's own
store waits for it on the unique key, then finds its document; on SQLite
every transaction takes the write lock (``BEGIN IMMEDIATE``), so the render
waits already to read the invoice and finds the document stored: the same
outcome. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select

from hub.documents import Outcome, render_invoice
from hub.store.tables import documents, invoices
from tests.test_render_host import _fakes, _issue, fake_host  # noqa: F401 - _fakes: the fixture

NUMBER = "INV-2025-000001"
WINNER = b"the other worker's bytes\n"


def _stage(workspace: Any) -> tuple[Any, Any, Any, int]:
    from hub.config import load_config
    from hub.store.db import open_store

    _issue(workspace)
    host = fake_host()
    config = load_config(workspace.config_path, host)
    engine = open_store(config.hub.database, config.base_dir)
    with engine.connect() as conn:
        invoice_id = conn.scalar(select(invoices.c.id).where(invoices.c.number == NUMBER))
    return host, config, engine, invoice_id


def _row(invoice_id: int, status: str = "stored") -> dict[str, Any]:
    stored = status == "stored"
    return dict(invoice_id=invoice_id, format="txt", renderer="text", status=status,
                file_name=f"{NUMBER}.txt" if stored else None, media_type="text/plain" if stored else None,
                sha256=hashlib.sha256(WINNER).hexdigest() if stored else None, size=len(WINNER) if stored else None,
                content=WINNER if stored else None, failures=None if stored else '[{"rule": "error"}]',
                rendered_at=datetime.now(timezone.utc))


def _render_while_another_worker_stores(engine: Any, config: Any, host: Any, invoice_id: int,
                                        **kw: Any) -> list[Outcome]:
    """``render_invoice`` of NUMBER in a thread, while another transaction
    holds the invoice's txt document uncommitted; it commits once the
    render is waiting for it."""
    done: dict[str, Any] = {}

    def render() -> None:
        try:
            done["out"] = render_invoice(engine, config, host, NUMBER, formats=["txt"], **kw)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            done["error"] = exc

    with engine.connect() as other:
        tx = other.begin()
        other.execute(insert(documents).values(**_row(invoice_id)))
        thread = threading.Thread(target=render)
        thread.start()
        time.sleep(1.5)  # it rendered and waits to store
        assert thread.is_alive()
        tx.commit()
    thread.join(30)
    assert "error" not in done, done.get("error")
    return done["out"]


def _stored(engine: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(documents.c.format, documents.c.status, documents.c.content))]


def test_rendering_an_invoice_another_worker_just_stored_keeps_its_document_and_is_no_error(workspace):
    host, config, engine, invoice_id = _stage(workspace)
    try:
        out = _render_while_another_worker_stores(engine, config, host, invoice_id)
        assert [(o.number, o.format, o.status, o.file_name, o.sha256, o.size, o.ok) for o in out] == [
            (NUMBER, "txt", "kept", f"{NUMBER}.txt", hashlib.sha256(WINNER).hexdigest(), len(WINNER), True)]
        assert out[0].document.content == WINNER
        assert _stored(engine) == [("txt", "stored", WINNER)]
    finally:
        engine.dispose()


def test_a_forced_render_replaces_the_document_another_worker_stored_meanwhile(workspace):
    host, config, engine, invoice_id = _stage(workspace)
    mine = b"RECHNUNG INV-2025-000001 ACME GmbH 13.09 EUR\n"
    try:
        out = _render_while_another_worker_stores(engine, config, host, invoice_id, force=True)
        assert [(o.format, o.status, o.sha256) for o in out] == [("txt", "stored", hashlib.sha256(mine).hexdigest())]
        assert _stored(engine) == [("txt", "stored", mine)]
    finally:
        engine.dispose()


def test_a_failed_document_of_another_worker_is_replaced_by_a_stored_one(workspace):
    host, config, engine, invoice_id = _stage(workspace)
    mine = b"RECHNUNG INV-2025-000001 ACME GmbH 13.09 EUR\n"
    try:
        with engine.begin() as conn:
            conn.execute(insert(documents).values(**_row(invoice_id, "failed")))
        out = render_invoice(engine, config, host, NUMBER, formats=["txt"])
        assert [(o.format, o.status) for o in out] == [("txt", "stored")]
        assert _stored(engine) == [("txt", "stored", mine)]
    finally:
        engine.dispose()


def test_the_render_job_of_two_workers_stores_each_document_once(workspace):
    from hub.documents import render_pending

    host, config, engine, _invoice_id = _stage(workspace)
    results: list[Any] = []
    try:
        threads = [threading.Thread(target=lambda: results.append(render_pending(engine, config, host, jobs=1)))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == 2
        assert all(o.ok for outcomes in results for o in outcomes)
        with engine.connect() as conn:
            rows = conn.execute(select(documents.c.invoice_id, documents.c.format, documents.c.status)).all()
        assert len(rows) == 10 and {r.status for r in rows} == {"stored"}
    finally:
        engine.dispose()
