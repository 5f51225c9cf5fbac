"""The account tree: which account is invoiced for which, and the walk up
an account's parents for the values a child inherits (currency, itemize).

An account without a parent is a *root*: it is invoiced, for its own usage
and for that of every account below it (its *members*). This module is the
one place that walks ``parent`` links; the loader, the catalog, closing and
the scheduler ask it instead of walking the accounts themselves.

It knows only account ids and their parents, never what an account holds
(currency, schedule, prices) or how it is invoiced. It is built from a
validated configuration (``Config.tree``) or from the raw ``[[accounts]]``
tables while checking them (:meth:`AccountTree.from_tables`), where a parent
may be unknown or the parents may form a loop: every walk stops there.

API (ids are account ids; order is configuration order):

- ``AccountTree(parents)``: ``parents`` maps each id to its parent or None.
- ``tree.root_of(id)``: the account invoiced for ``id``'s usage (``id``
  itself for a root); ``KeyError`` for an unknown id.
- ``tree.members(root)``: ``root`` and every account invoiced through it, in
  configuration order (``root`` at its own place in it); ``[]`` for an id
  that is not a root.
- ``tree.ancestors(id)``: its parent, its parent's parent, ... up to its
  root (``[]`` for a root).
- ``tree.roots()``: the accounts without a parent.
- ``tree.parent(id)``: its parent, or None.
- ``tree.loop_through(id, parent)``: the chain of a loop of parents an
  account with that parent is in, or None (for ``hub check``).
- ``inherited(tables, tree, id, key)``: a table's string ``key``, else the
  nearest ancestor's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class AccountTree:
    """The parents of the accounts, with their roots and members computed
    once (closing 10,000 accounts must not walk every account for each)."""

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self._parents = dict(parents)
        self._roots: dict[str, str] = {}
        self._members: dict[str, list[str]] = {}
        for account_id in self._parents:
            root = self._walk_to_root(account_id)
            self._roots[account_id] = root
            self._members.setdefault(root, []).append(account_id)

    @classmethod
    def from_tables(cls, tables: Iterable[Mapping[str, Any]]) -> AccountTree:
        """The tree of raw ``[[accounts]]`` tables as written (the first
        table of an id counts; tables without a string id are skipped)."""
        parents: dict[str, str | None] = {}
        for table in tables:
            account_id, parent = table.get("id"), table.get("parent")
            if isinstance(account_id, str) and account_id not in parents:
                parents[account_id] = parent if isinstance(parent, str) else None
        return cls(parents)

    def _walk_to_root(self, account_id: str) -> str:
        chain = self.ancestors(account_id)
        return chain[-1] if chain else account_id

    def parent(self, account_id: str) -> str | None:
        """``account_id``'s parent, or None (also for an unknown id)."""
        return self._parents.get(account_id)

    def ancestors(self, account_id: str) -> list[str]:
        """The parent, the parent's parent, ... of ``account_id``, nearest
        first. The walk stops before an unknown account and before an
        account seen already (a loop of parents)."""
        out: list[str] = []
        seen = {account_id}
        parent = self._parents.get(account_id)
        while parent is not None and parent not in seen and parent in self._parents:
            out.append(parent)
            seen.add(parent)
            parent = self._parents[parent]
        return out

    def loop_through(self, account_id: Any, parent: str) -> list[str] | None:
        """The chain ``account_id -> parent -> ...`` up to the first account
        it reaches twice, when an account with this ``parent`` would be in
        (or lead into) a loop of parents; None when the chain ends."""
        chain = [account_id, parent]
        while self._parents.get(chain[-1]) is not None and chain[-1] not in chain[:-1]:
            chain.append(self._parents[chain[-1]])
        return chain if chain[-1] in chain[:-1] else None

    def root_of(self, account_id: str) -> str:
        """The account invoiced for ``account_id``'s usage.

        :raises KeyError: for an unknown account.
        """
        return self._roots[account_id]

    def members(self, root: str) -> list[str]:
        """``root`` and every account invoiced through it, in configuration
        order; ``[]`` when ``root`` is not a root."""
        return list(self._members.get(root, ()))

    def roots(self) -> list[str]:
        """The accounts without a parent, in configuration order."""
        return [a for a, parent in self._parents.items() if parent is None]

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._parents

    def __len__(self) -> int:
        return len(self._parents)


def inherited(tables: Mapping[str, Mapping[str, Any]], tree: AccountTree, account_id: str | None,
              key: str) -> str | None:
    """The string ``key`` of ``account_id``'s table, else of its nearest
    ancestor that sets it (a child is invoiced through its parent: its
    currency, its choice of lines); None if none does. ``tables``: the
    ``[[accounts]]`` tables by id."""
    if account_id is None:
        return None
    for candidate in (account_id, *tree.ancestors(account_id)):
        value = (tables.get(candidate) or {}).get(key)
        if isinstance(value, str):
            return value
    return None
