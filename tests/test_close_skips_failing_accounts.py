"""An account that cannot be invoiced is reported and skipped (issue 23,
defect 4): ``hub invoice`` issues the others and exits 2 naming the account
and the reason; ``hub run``'s close job (:func:`hub.due.close_due`) logs the
failure with the account and goes on.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from hub import due
from hub.config import load_config
from hub.host import build_host
from hub.store.db import open_store
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER, _setup

# Neither "nowhere" nor "atlantis" has a country: neither can be invoiced.
BROKEN = ACCOUNTS + """
[[accounts]]
id = "nowhere"
name = "No country Ltd"

[[accounts]]
id = "atlantis"
name = "Atlantis GmbH"
"""
USAGE = OCTOBER + ("n1,nowhere,vm-8,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T01:00:00Z,1\n"
                   "t1,atlantis,vm-7,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T01:00:00Z,1\n")


def test_hub_invoice_issues_the_other_accounts_and_exits_2_naming_the_one_it_skipped(workspace):
    _setup(workspace, accounts=BROKEN, usage=USAGE)
    result = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert result.exit_code == 2
    assert [line.split()[:3] for line in result.stdout.splitlines()[2:9]] == [
        ["acme", "issued", "INV-2025-000001"], ["globex", "issued", "INV-2025-000002"],
        ["initech", "issued", "INV-2025-000003"], ["umbrella", "issued", "INV-2025-000004"],
        ["charity", "issued", "INV-2025-000005"], ["nowhere", "failed"], ["atlantis", "failed"]]
    errors = result.stderr.splitlines()
    assert errors[0] == ("error: nowhere: not invoiced: account 'nowhere' has no country: the tax of its invoices "
                         "depends on it")
    assert errors[1] == ("error: atlantis: not invoiced: account 'atlantis' has no country: the tax of its invoices "
                         "depends on it")
    assert errors[2] == "hub: 2 accounts not invoiced, 5 closed"
    assert [(d["account"], d["number"]) for d in workspace.json("invoices", "list")] == [
        ("acme", "INV-2025-000001"), ("globex", "INV-2025-000002"), ("initech", "INV-2025-000003"),
        ("umbrella", "INV-2025-000004"), ("charity", "INV-2025-000005")]
    # --json says the same, and exits 2 too.
    again = workspace.hub("invoice", "--period", "2025-10", "--json")
    assert again.exit_code == 2
    assert [(r["account"], r["outcome"]) for r in json.loads(again.stdout)] == [
        ("acme", "already_issued"), ("globex", "already_issued"), ("initech", "already_issued"),
        ("umbrella", "already_issued"), ("charity", "already_issued"), ("nowhere", "failed"), ("atlantis", "failed")]


def test_fixing_the_skipped_account_invoices_it_next_time(workspace):
    _setup(workspace, accounts=BROKEN, usage=USAGE)
    assert workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03").exit_code == 2
    workspace.config(BASE + BROKEN.replace('name = "No country Ltd"\n', 'name = "No country Ltd"\ncountry = "DE"\n')
                     .replace('name = "Atlantis GmbH"\n', 'name = "Atlantis GmbH"\ncountry = "DE"\n'))
    result = workspace.json("invoice", "--period", "2025-10", "--issue-date", "2025-11-04")
    assert [(r["account"], r["outcome"], r["number"]) for r in result if r["outcome"] == "issued"] == [
        ("nowhere", "issued", "INV-2025-000006"), ("atlantis", "issued", "INV-2025-000007")]


def test_the_close_job_logs_the_account_it_cannot_invoice_and_closes_the_others(workspace, caplog):
    _setup(workspace, accounts=BROKEN, usage=USAGE)
    config = load_config(workspace.config_path, build_host())
    engine = open_store(config.hub.database, config.base_dir)
    try:
        with caplog.at_level(logging.WARNING, logger="hub.run"):
            done = due.close_due(engine, config, datetime(2025, 11, 5, 8, tzinfo=timezone.utc))
    finally:
        engine.dispose()
    assert [(c.account, c.outcome, c.number) for c in done] == [
        ("acme", "issued", "INV-2025-000001"), ("globex", "issued", "INV-2025-000002"),
        ("initech", "issued", "INV-2025-000003"), ("umbrella", "issued", "INV-2025-000004"),
        ("charity", "issued", "INV-2025-000005"), ("nowhere", "failed", None), ("atlantis", "failed", None)]
    logged = [r.getMessage() for r in caplog.records if r.name == "hub.run"]
    assert logged[0] == ("close: account nowhere cannot be invoiced for 2025-10, skipped: account 'nowhere' has no "
                         "country: the tax of its invoices depends on it")
    assert logged[1] == ("close: account atlantis cannot be invoiced for 2025-10, skipped: account 'atlantis' has no "
                         "country: the tax of its invoices depends on it")
