"""The render stage: issued invoices in, stored documents out.

- :mod:`hub.documents.render`: the renderer instances and their order,
  rendering one invoice, and the ``documents`` row of each format;
- :mod:`hub.documents.parallel`: many invoices in forked worker processes;
- :mod:`hub.documents.stored`: reading what was stored (``hub documents``).

This package re-exports their public names. It reads invoices through
:mod:`hub.invoices` and must not import the close stage or the outbox (the
outbox imports it, to attach documents to a delivery).
"""

from hub.documents.parallel import render_jobs, render_many, render_pending
from hub.documents.render import (
    FAILED,
    REJECTED,
    STORED,
    TEMPLATE_DIR,
    Instance,
    Outcome,
    RenderError,
    pending,
    render_invoice,
    renderer_instances,
    template_dirs,
)
from hub.documents.stored import StoredDocument, list_documents, read_document

__all__ = [
    "FAILED", "REJECTED", "STORED", "TEMPLATE_DIR", "Instance", "Outcome", "RenderError", "StoredDocument",
    "list_documents", "pending", "read_document", "render_invoice", "render_jobs", "render_many", "render_pending",
    "renderer_instances", "template_dirs",
]
