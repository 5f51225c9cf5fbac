"""The application layer: one :class:`Hub` per hub.toml, the only door to the pipeline.

The CLI, the scheduler (``hub run``) and the coming HTTP API call these and nothing below them:

    hub = Hub.open("hub.toml")
    period = hub.period("2026-10")
    charges = hub.rate(period)
    closings = hub.close(period)
    hub.render([c.number for c in closings if c.number])
    hub.deliver()

:mod:`hub.app.core` holds the :class:`Hub` and its typed results; :mod:`hub.app.accounts` the import
of accounts from a CSV file into the configuration.
"""

from hub.app.core import (
    DELIVERY_STATUSES,
    INVOICE_STATUSES,
    AccountTotal,
    Attempt,
    Charge,
    Closing,
    Difference,
    Hub,
    HubError,
    Ledger,
    NotFound,
    Outcome,
    PullResult,
    QuarantineEntry,
    Reconciliation,
    StoredDocument,
    Trace,
    TracedRecord,
    UsageLine,
    WhatIf,
)

__all__ = [
    "DELIVERY_STATUSES", "INVOICE_STATUSES", "AccountTotal", "Attempt", "Charge", "Closing", "Difference", "Hub",
    "HubError", "Ledger", "NotFound", "Outcome", "PullResult", "QuarantineEntry", "Reconciliation",
    "StoredDocument", "Trace", "TracedRecord", "UsageLine", "WhatIf",
]
