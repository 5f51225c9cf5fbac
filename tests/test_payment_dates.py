"""Payments' dates: a payment dated after today (in
the hub's time zone) is refused, nothing recorded; one dated before the
invoice's issue is recorded as given, with a warning on stderr.

The October invoice of acme (tests/test_invoices.py) is issued 2025-11-03
for 13.09. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import hub.cli.invoices  # noqa: F401 - registers the commands for the in-process runner
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER, _invoice, _setup, _show


def _october(workspace) -> None:
    _setup(workspace)
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")


def _pay(workspace, amount: str, day: str):
    return workspace.hub("invoices", "pay", "INV-2025-000001", "--amount", amount, "--date", day)


def test_a_payment_dated_tomorrow_is_refused_with_a_clear_message_and_nothing_recorded(workspace):
    _october(workspace)
    today = datetime.now(timezone.utc).date()
    refused = _pay(workspace, "13.09", (today + timedelta(days=1)).isoformat())
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr.strip() == (f"hub: --date {today + timedelta(days=1)} is in the future: "
                                      f"today is {today} (UTC)")
    doc = _show(workspace, "INV-2025-000001")
    assert (doc["status"], doc["payments"], doc["open_balance"]) == ("issued", [], "13.09")


def test_a_payment_dated_today_is_recorded_without_a_warning(workspace):
    _october(workspace)
    today = datetime.now(timezone.utc).date()
    paid = _pay(workspace, "13.09", today.isoformat())
    assert paid.exit_code == 0, paid.output
    assert paid.stderr == ""
    assert _show(workspace, "INV-2025-000001")["payments"] == [
        {"amount": "13.09", "date": today.isoformat(), "reference": None}]


def test_a_payment_dated_before_the_invoices_issue_is_recorded_with_a_warning_on_stderr(workspace):
    _october(workspace)
    early = _pay(workspace, "5.00", "2025-11-01")
    assert early.exit_code == 0, early.output
    assert early.stderr.strip() == ("warning: INV-2025-000001: the payment is dated 2025-11-01, before the invoice "
                                    "was issued (2025-11-03); recorded as given")
    assert early.stdout.strip() == "INV-2025-000001: partially_paid (5.00 of 13.09 EUR paid; 8.09 EUR open)"
    doc = _show(workspace, "INV-2025-000001")
    assert (doc["status"], doc["open_balance"]) == ("partially_paid", "8.09")
    assert doc["payments"] == [{"amount": "5.00", "date": "2025-11-01", "reference": None}]
    on_the_day = _pay(workspace, "8.09", "2025-11-03")
    assert on_the_day.exit_code == 0 and on_the_day.stderr == ""


def test_today_is_the_hubs_time_zone_day_not_utcs(workspace):
    """In a hub on Pacific/Kiritimati (UTC+14) today is often tomorrow in
    UTC: a payment dated on the hub's today is taken, one a day later is not."""
    workspace.write("hub.toml", f'[hub]\ndatabase = "{workspace.db_url}"\ntimezone = "Pacific/Kiritimati"\n'
                    + BASE + ACCOUNTS, dedent=False)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    _invoice(workspace, "--period", "2025-10", "--account", "acme", "--issue-date", "2025-11-03")
    today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    later = _pay(workspace, "1.00", (today + timedelta(days=1)).isoformat())
    assert later.exit_code == 2
    assert f"today is {today} (Pacific/Kiritimati)" in later.stderr
    assert _pay(workspace, "1.00", today.isoformat()).exit_code == 0
