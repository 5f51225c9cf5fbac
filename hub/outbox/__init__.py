"""The outbox: every delivery of an invoice to an exporter, exactly once.

- :mod:`hub.outbox.queue`: the rows an event writes, in the event's own
  transaction (:func:`enqueue`), the statuses, events, occasions and keys,
  and a new delivery of an issued event (:func:`resend`);
- :mod:`hub.outbox.worker`: the worker that sends due rows, with leases,
  retries and backoff (:func:`deliver_pending`);
- :mod:`hub.outbox.view`: ``hub deliveries`` (list, attempts, retry);
- :mod:`hub.outbox.notify`: the invoice event hooks, called after the fact.

This package re-exports their public names. The close stage imports
:mod:`hub.outbox.queue` only, and nothing here imports the close stage:
invoices are read through :mod:`hub.invoices`.
"""

from hub.outbox.notify import notify
from hub.outbox.queue import (
    BLOCKED,
    CANCELLED,
    DEAD,
    DELIVERED,
    ISSUED_EVENT,
    OVERDUE_EVENT,
    PAID_EVENT,
    PENDING,
    SENDING,
    STATUSES,
    OutboxError,
    Resent,
    delivery_key,
    enqueue,
    resend,
)
from hub.outbox.view import attempts_of, list_deliveries, retry
from hub.outbox.worker import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    LEASE,
    RETRY_AFTER_CAP,
    Attempt,
    backoff,
    deliver_one,
    deliver_pending,
    due,
)

__all__ = [
    "BACKOFF_BASE", "BACKOFF_CAP", "BLOCKED", "CANCELLED", "DEAD", "DELIVERED", "ISSUED_EVENT", "LEASE",
    "OVERDUE_EVENT", "PAID_EVENT", "PENDING", "RETRY_AFTER_CAP", "SENDING", "STATUSES", "Attempt", "OutboxError", "Resent",
    "attempts_of", "backoff", "deliver_one", "deliver_pending", "delivery_key", "due", "enqueue", "list_deliveries",
    "notify", "resend", "retry",
]
