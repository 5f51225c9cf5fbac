"""The buyer's references given per invoice (issue 23): ``hub invoice
--purchase-order/--buyer-reference`` put them on the invoices it issues in
place of the account's ``purchase_order``/``buyer_reference`` (EN 16931
BT-13, BT-10), which stay the default.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.test_invoices import ACCOUNTS, _invoice, _setup, _show

REFERENCED = ACCOUNTS.replace('id = "acme"\nname = "ACME GmbH"\n',
                              'id = "acme"\nname = "ACME GmbH"\npurchase_order = "PO-2025-1"\n'
                              'buyer_reference = "ACME-IT"\n')
assert REFERENCED != ACCOUNTS


def test_hub_invoice_gives_a_purchase_order_in_place_of_the_accounts(workspace):
    _setup(workspace, accounts=REFERENCED)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--purchase-order", "PO-4711",
             "--issue-date", "2025-11-03")
    doc = _show(workspace, "INV-2025-000001")
    assert (doc["purchase_order"], doc["buyer_reference"]) == ("PO-4711", "ACME-IT")
    # Without the options, the account's.
    _invoice(workspace, "--period", "2025-10", "--account", "globex", "--buyer-reference", "Projet 7",
             "--issue-date", "2025-11-03")
    globex = _show(workspace, "INV-2025-000002")
    assert (globex.get("purchase_order"), globex["buyer_reference"]) == (None, "Projet 7")
    _invoice(workspace, "--period", "2025-10", "--account", "initech", "--issue-date", "2025-11-03")
    assert "purchase_order" not in _show(workspace, "INV-2025-000003")


def test_an_empty_reference_leaves_the_accounts_off_and_a_draft_shows_the_override(workspace):
    _setup(workspace, accounts=REFERENCED)
    (draft,) = _invoice(workspace, "--period", "2025-10", "--account", "acme", "--draft", "--buyer-reference", "")
    listed = workspace.json("invoices", "list")
    doc = _show(workspace, f"draft:{listed[0]['draft_id']}")
    assert (draft["outcome"], doc["purchase_order"], "buyer_reference" in doc) == ("draft", "PO-2025-1", False)


def test_references_given_by_hand_need_an_account(workspace):
    _setup(workspace, accounts=REFERENCED)
    result = workspace.hub("invoice", "--period", "2025-10", "--purchase-order", "PO-4711")
    assert result.exit_code == 2
    assert "--purchase-order and --buyer-reference need --account: they are one buyer's references" in result.stderr
    assert workspace.json("invoices", "list") == []
