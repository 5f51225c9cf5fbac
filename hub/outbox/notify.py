"""The invoice event hooks (``hub_invoice_issued``, ``hub_invoice_paid``,
``hub_invoice_overdue``): plugins told of invoices after the fact, each
with the invoice's JSON (and, for a reminder, the reminder).

Unlike a delivery, a hook is not queued: it is called once the event's
transaction has committed, and a plugin's failure is recorded by the host
and the others go on. It reads invoices through the read model
(:mod:`hub.invoices`) and must not know the close stage, the outbox rows
or the documents.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, select

from hub.host import Host
from hub.invoices import invoice_json
from hub.store.tables import invoices


def notify(engine: Engine, host: Host, hook: str, numbers: Sequence[str],
           extra: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Call the event hook ``hook`` (``hub_invoice_issued``,
    ``hub_invoice_paid`` or ``hub_invoice_overdue``) for each invoice of
    ``numbers``, after the fact; ``extra``: more arguments by number (the
    ``reminder`` of an overdue one), each passed to the plugins that take
    it. A plugin's failure is recorded and the others go on."""
    caller = getattr(host.pm.hook, hook)
    if not numbers or not caller.get_hookimpls():
        return
    with engine.connect() as conn:
        docs = [invoice_json(conn, r) for r in conn.execute(select(invoices).where(invoices.c.number.in_(numbers))
                                                              .order_by(invoices.c.id))]
    for doc in docs:
        for impl in caller.get_hookimpls():
            args = {"invoice": json.loads(json.dumps(doc))} if "invoice" in impl.argnames else {}
            for name, value in ((extra or {}).get(doc["number"]) or {}).items():
                if name in impl.argnames:
                    args[name] = json.loads(json.dumps(value, default=str))
            host.guard(impl.plugin_name, hook, impl.function, **args)
