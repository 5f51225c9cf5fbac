"""A list of rows given to one statement as a derived table: one JSON
parameter, whatever the number of rows (no bound parameter per value, so
no statement of SQLite's 32,766-variable limit and no cache entry per list
length).

:func:`rows_sql` is the table's SQL for a dialect (SQLite ``json_each``,
PostgreSQL ``json_to_recordset``), :func:`rows_param` its parameter. The
close stage checks many (account, period) pairs at once with it. Knows no
table of the store and no stage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

#: the PostgreSQL types of the columns' Python types
_PG_TYPES = {int: "bigint", str: "text"}


def rows_sql(dialect: str, columns: Mapping[str, type], param: str = "rows") -> str:
    """A derived table (in parentheses, without an alias) of the rows of
    the JSON parameter ``:param`` (:func:`rows_param`), with ``columns``
    (name -> ``int`` or ``str``)."""
    for name, kind in columns.items():
        if not name.isidentifier() or kind not in _PG_TYPES:
            raise ValueError(f"column {name!r}: a plain name of type int or str")
    if dialect == "sqlite":
        cols = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in columns)
        return f"(SELECT {cols} FROM json_each(:{param}))"
    if dialect == "postgresql":
        cols = ", ".join(f"{name} {_PG_TYPES[kind]}" for name, kind in columns.items())
        return f"(SELECT * FROM json_to_recordset(CAST(:{param} AS json)) AS r({cols}))"
    raise ValueError(f"no derived table of rows for the {dialect} dialect")


def rows_param(rows: Iterable[Mapping[str, Any]]) -> str:
    """The parameter of :func:`rows_sql`: the rows as a JSON array of objects."""
    return json.dumps(list(rows), separators=(",", ":"))
