"""Reading stored documents: ``hub documents`` and the bytes of one.

It reads the ``documents`` rows; it must not know the renderers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from hub.documents.render import STORED
from hub.plugin.types import Document
from hub.store.tables import documents, invoices


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
