"""The :class:`~hub.app.core.Hub`'s operations on the receivables: statements, the book's open balances and refunds.

A mixin of :class:`~hub.app.core.Hub`: it uses the hub's ``engine``,
``config`` and ``host``, and must not know SQL, the tables, click or HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hub.config import Config
    from hub.host import Host


class Books:
    """The the receivables: statements, the book's open balances and refunds (see the module's docstring)."""

    if TYPE_CHECKING:
        engine: Engine
        config: Config
        host: Host
