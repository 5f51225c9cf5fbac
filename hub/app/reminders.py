"""The :class:`~hub.app.core.Hub`'s operations on reminders of overdue invoices (dunning) and resending an invoice's deliveries.

A mixin of :class:`~hub.app.core.Hub`: it uses the hub's ``engine``,
``config`` and ``host``, and must not know SQL, the tables, click or HTTP.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from hub.app.errors import HubError
from hub.closing.errors import utcnow
from hub.dunning import Reminder, run_dunning
from hub.outbox import OutboxError, Resent, notify, resend

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.config import Config
    from hub.host import Host

__all__ = ["Reminder", "Reminders", "Resent"]


class Reminders:
    """The reminders of overdue invoices (dunning) and resending an invoice's deliveries (see the module's docstring)."""

    if TYPE_CHECKING:
        engine: Engine
        config: Config
        host: Host

        def today(self, now: datetime | None = None) -> date: ...

        def invoice(self, ref: str) -> dict[str, Any]: ...

    def dunning(self, as_of: date | None = None, *, now: datetime | None = None) -> list[Reminder]:
        """Record the reminders due on the day ``as_of`` (default today in the hub's time zone) under
        ``[dunning] after_days`` and queue their ``invoice.overdue`` deliveries (see :mod:`hub.dunning`: once per
        invoice and step, the latest step only when several are due, none once settled); what it queued. The
        plugins are told of each reminder (``hub_invoice_overdue``) once it is recorded."""
        now = now or utcnow()
        day = as_of or self.today(now)
        if day > self.today(now):
            raise HubError(f"--as-of {day.isoformat()} is in the future (today is {self.today(now).isoformat()} in "
                           f"the hub's time zone {self.config.hub.timezone}): reminders are sent on the day, "
                           f"not ahead of it")
        queued = run_dunning(self.engine, self.config, day, now)
        if queued:
            notify(self.engine, self.host, "hub_invoice_overdue", [r.number for r in queued],
                   extra={r.number: {"reminder": r.as_dict()} for r in queued})
        return queued

    def resend(self, number: str, exporter: str | None = None, *, now: datetime | None = None) -> list[Resent]:
        """Queue a new delivery of issued invoice or credit note ``number``'s issued event (``invoice.issued`` or
        ``credit_note.issued``), due now, to every exporter that takes it or to ``exporter`` alone (one added
        since, a customer who lost the mail): occasion ``resend:N``, N the next for that invoice and exporter,
        with a key of its own. A draft, an unknown number or an unknown exporter is refused."""
        doc = self.invoice(number)  # NotFound names an unknown number
        if doc.get("status") == "draft" or doc.get("number") is None:
            raise HubError(f"{number} is a draft: only an issued invoice or credit note can be resent (issue it "
                           f"first: hub invoice --period ...)")
        try:
            return resend(self.engine, self.config, number, exporter, now or utcnow())
        except OutboxError as exc:
            raise HubError(str(exc)) from exc
