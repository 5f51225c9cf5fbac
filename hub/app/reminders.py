"""The :class:`~hub.app.core.Hub`'s operations on reminders of overdue invoices (dunning) and resending an invoice's deliveries.

A mixin of :class:`~hub.app.core.Hub`: it uses the hub's ``engine``,
``config`` and ``host``, and must not know SQL, the tables, click or HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.config import Config
    from hub.host import Host


class Reminders:
    """The reminders of overdue invoices (dunning) and resending an invoice's deliveries (see the module's docstring)."""

    if TYPE_CHECKING:
        engine: Engine
        config: Config
        host: Host
