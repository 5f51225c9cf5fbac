"""An invoice run killed at any point, then run again, issues every invoice
once: no duplicate, no gap in the numbers, no charge or credit lost or
counted twice. Concurrent runs in separate processes issue each once too."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from hub.store.db import open_store
from hub.store.tables import credit_entries, invoices, manual_charges
from tests.conftest import HEADER, Workspace
from tests.test_crash_safety import _wait_for_backends_to_end

ACCOUNTS = 120

CONFIG = """
[seller]
name = "Hub Cloud GmbH"
country = "DE"
vat_id = "DE136695976"

[tax.rates]
DE = "19"
FR = "20"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[products]]
name = "vcpu"
meter = "compute.vcpu"
per = "second"
price = { model = "per_unit", unit_price = "0.0000115" }

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"
"""


def _accounts() -> str:
    out = []
    for i in range(ACCOUNTS):
        country = ("DE", "FR", "US")[i % 3]
        out.append(f'[[accounts]]\nid = "a{i:03d}"\nname = "Customer {i}"\ncountry = "{country}"\n')
        if i % 4 == 0:
            out.append(f'[[credits]]\naccount = "a{i:03d}"\namount = "3.00"\nkind = "promotional"\n')
        if i % 5 == 0:
            out.append(f'[[credits]]\naccount = "a{i:03d}"\namount = "2.50"\nkind = "prepaid"\n')
    return "\n".join(out)


def _usage() -> str:
    rows = [HEADER]
    for i in range(ACCOUNTS):
        hours = 10 + i  # from 2 October 00:00, i + 10 hours of 1 to 4 vCPU
        rows.append(f"r{i},a{i:03d},vm-{i},compute.vcpu,2025-10-02T00:00:00Z,"
                    f"2025-10-{2 + hours // 24:02d}T{hours % 24:02d}:00:00Z,{1 + i % 4}\n")
    return "".join(rows)


def _workspace(root: Path, db_url: str) -> Workspace:
    ws = Workspace(root, db_url)
    ws.config(CONFIG + _accounts())
    ws.write("usage/2025-10.csv", _usage(), dedent=False)
    assert ws.hub("pull").exit_code == 0
    charge = ws.hub("charge", "add", "a007", "--amount", "12.34", "--description", "Support")
    assert charge.exit_code == 0, charge.output
    return ws


def _hub(ws: Workspace) -> list[str]:
    return [sys.executable, "-c", "from hub.cli.main import main; main()", "--config", str(ws.config_path)]


INVOICE = ("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")


def _issued(engine) -> int:
    """Invoices issued so far, read without queueing behind the run's writer."""
    if engine.dialect.name == "sqlite":
        with closing(sqlite3.connect(engine.url.database)) as conn:
            return conn.execute("SELECT count(*) FROM invoices WHERE number IS NOT NULL").fetchone()[0]
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(invoices).where(invoices.c.number.is_not(None)))


def _outcome(ws: Workspace) -> dict:
    """Every figure that must not depend on crashes: invoices (number,
    account, total, amount due, lines), the credit ledger, manual charges."""
    docs = ws.json("invoices", "list")  # the full contract of each
    engine = open_store(ws.db_url, ws.root)
    with engine.connect() as conn:
        ledger = sorted(tuple(r) for r in conn.execute(
            select(credit_entries.c.grant_id, credit_entries.c.entry, credit_entries.c.amount)))
        charged = conn.scalar(select(func.count()).select_from(manual_charges).where(manual_charges.c.invoice_id.is_not(None)))
    engine.dispose()
    return {
        "invoices": [(d["number"], d["account"], d["total"], d["prepaid_applied"], d["amount_due"],
                      [(ln["product"], ln["amount"]) for ln in d["lines"]]) for d in docs],
        "ledger": ledger,
        "manual charges invoiced": charged,
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The outcome of one uninterrupted run (SQLite, in-process)."""
    root = tmp_path_factory.mktemp("reference")
    ws = _workspace(root, f"sqlite:///{root / 'hub.db'}")
    assert ws.hub(*INVOICE).exit_code == 0
    outcome = _outcome(ws)
    assert [n for n, *_ in outcome["invoices"]] == [f"INV-2025-{i:06d}" for i in range(1, ACCOUNTS + 1)]
    assert outcome["manual charges invoiced"] == 1
    return outcome


@pytest.mark.parametrize("kills", [(0,), (1,), (ACCOUNTS // 3, ACCOUNTS // 2, 2 * ACCOUNTS // 3)],
                         ids=["killed starting", "killed after the first invoice", "killed three times"])
def test_an_invoice_run_killed_then_run_again_issues_every_invoice_once_without_gaps(
        workspace, reference, kills):
    ws = _workspace(workspace.root, workspace.db_url)
    engine = open_store(workspace.db_url, workspace.root)
    # the killed runs' sessions carry a name of their own (other runs share
    # the server): the setup's and this test's connections do not
    application = f"hub-crash-{uuid.uuid4().hex[:12]}"
    if engine.dialect.name == "postgresql":
        ws.db_url = make_url(ws.db_url).update_query_dict({"application_name": application}).render_as_string(
            hide_password=False)
        ws.config(CONFIG + _accounts())
    for wanted in kills:
        proc = subprocess.Popen([*_hub(workspace), *INVOICE], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while wanted and _issued(engine) < wanted and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is not None:
            pytest.fail("the run finished before it could be killed; raise ACCOUNTS")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _wait_for_backends_to_end(engine, application)
        assert _issued(engine) < ACCOUNTS
    again = subprocess.run([*_hub(workspace), *INVOICE], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    engine.dispose()
    assert _outcome(workspace) == reference


def test_three_concurrent_invoice_runs_issue_each_invoice_once(workspace, reference):
    _workspace(workspace.root, workspace.db_url)
    procs = [subprocess.Popen([*_hub(workspace), *INVOICE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    outcome = _outcome(workspace)
    # Numbers follow the order in which the runs issued them, which races
    # decide; each account has one invoice, the numbers have no gap, and
    # every figure is the uninterrupted run's.
    assert sorted(n for n, *_ in outcome["invoices"]) == [f"INV-2025-{i:06d}" for i in range(1, ACCOUNTS + 1)]
    by_account = sorted(rest for _n, *rest in outcome["invoices"])
    assert by_account == sorted(rest for _n, *rest in reference["invoices"])
    assert outcome["ledger"] == reference["ledger"]
    assert outcome["manual charges invoiced"] == 1
