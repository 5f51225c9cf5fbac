"""Configuration errors: each names the file, the table and the key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ConfigError:
    """One problem in the configuration.

    - ``file``: the file it is in, as the operator wrote it (``hub.toml``,
      ``config/catalog.toml``).
    - ``table``: the table, such as ``[hub]`` or ``sources[2] "files"``
      (array positions are 1-based: the 2nd ``[[sources]]`` table).
    - ``key``: the dotted key inside that table, or ``""``.
    - ``message``: what is wrong, in words.
    """

    file: str
    table: str
    key: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.table, self.key) if p)
        return f"{where}: {self.message}"


class ConfigErrors(Exception):
    """All the errors found in a configuration, raised together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(set(errors), key=lambda e: (e.file, _table_order(e.table), e.key, e.message))
        super().__init__("\n".join(str(e) for e in self.errors))


def _table_order(table: str) -> tuple[str, int]:
    # "sources[10] ..." sorts after "sources[9] ..."
    name, _, rest = table.partition("[")
    digits = rest.split("]", 1)[0]
    return (name, int(digits) if digits.isdigit() else 0)
