"""Whether every account can be invoiced: the errors the close stage
would raise, found before a period is closed (``hub check``).

A configuration without ``[seller]``, with an account that has no
country, or whose tax cannot be determined loads (the rating-only
commands work on it), but invoicing stops at it (or, since the close
stage skips what it cannot invoice, at that account). This module asks the
close stage's own checks (:mod:`hub.closing.build`: the tax of each
invoiced account, the discounts of its members, their currency) for every
invoiced account and returns what they refuse, each located at the table
and key to fix, so that ``hub check`` and invoicing cannot disagree.

It must not hold a rule of its own (the checks are build's), nor know the
store: it reads only the configuration.
"""

from __future__ import annotations

from dataclasses import replace

from hub.closing.build import _discounts, _member_currencies, _seller, _tax
from hub.closing.errors import InvoicingError
from hub.config.errors import ConfigError
from hub.config.model import Config


#: the tables that say a configuration is meant to issue invoices
INVOICING_TABLES = ("seller", "invoicing", "tax")


def issues_invoices(config: Config) -> bool:
    """Whether the configuration sets up invoicing (``[seller]``,
    ``[invoicing]`` or ``[tax]``, as ``hub init`` writes them): then what
    invoicing would refuse is an error of ``hub check``; a rating-only
    configuration (meters, accounts and sources alone) is not checked for
    invoicing (``hub invoice`` says what it lacks)."""
    return any(name in config.raw for name in INVOICING_TABLES)


def invoicing_problems(config: Config) -> list[ConfigError]:
    """Every error the close stage would raise for an invoiced account
    (a root), as configuration errors naming the file, table and key:

    - ``[seller]`` missing (once, however many accounts it stops);
    - an account's tax: no ``country``, or no tax the rules determine for
      it (``country``);
    - a discount given to an account invoiced through another (its
      ``account``);
    - a member billed in another currency than its root (its ``currency``).
    """
    problems: list[ConfigError] = []

    def add(where: tuple[str, str], key: str, exc: InvoicingError) -> None:
        error = ConfigError(*where, key, str(exc))
        if error not in problems:
            problems.append(error)

    tree = config.tree
    roots = list(tree.roots())
    if roots:
        try:
            _seller(config)
        except InvoicingError as exc:
            add(config.place("seller"), "", exc)
    for root in roots:
        account, members = config.accounts[root], tree.members(root)
        try:
            _tax(config, account)
        except InvoicingError as exc:
            # without a seller, only an account's missing country is its own
            # error (the seller's is reported once, above)
            if account.country is None or config.seller is not None:
                add(config.place("accounts", root), "country", exc)
        for member in members:
            try:
                _member_currencies(config, root, [member])
            except InvoicingError as exc:
                add(config.place("accounts", member), "currency", exc)
    for discount in config.discounts:
        if discount.account not in tree:
            continue
        root = tree.root_of(discount.account)
        try:
            # each discount on its own, so that every wrong one is reported
            _discounts(replace(config, discounts=(discount,)), root, tree.members(root))
        except InvoicingError as exc:
            add(config.place("discounts", discount.index), "account", exc)
    return problems
