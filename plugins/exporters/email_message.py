"""The ``email`` exporter's message: one invoice or credit note as MIME.

::

    multipart/mixed
      multipart/alternative
        text/plain   the ``body`` template: number, period, total, amount due, due date
        text/html    the invoice's rendered HTML document, as stored
      application/pdf   the stored PDF document, byte for byte, under its file name
      application/xml   the UBL document, when ``attach_ubl = true``

A reminder (``invoice.overdue``, one per ``[dunning] after_days`` step) is
text and the invoice's documents, without the HTML alternative (that is
the invoice itself, and a mail client would show it instead of the
reminder)::

    multipart/mixed
      text/plain        the ``reminder_body`` template: step, days overdue, open balance, due date
      application/pdf   the stored PDF document of the invoice, as for issue
      application/xml   the UBL document, when ``attach_ubl = true``

Templates: ``subject`` and ``body`` (or ``body_file``) are Jinja2 templates
(sandboxed, undefined names are errors) of the plain-text part. They see
the invoice's fields as ``hub invoices show NUMBER --json`` prints them
(``number``, ``kind``, ``seller.name``, ``buyer.name``, ``total``,
``amount_due``, ``currency``, ``period``, ``due_date``, ``refers_to``...), the
whole of it as ``invoice``, and ``title`` ("Invoice" or "Credit note"),
``first_day`` / ``last_day`` (the period's dates, both inclusive),
``attachments`` (file names), ``event`` and ``reminder`` (None but for a
reminder: ``step``, ``days_overdue``, ``due_date``, ``as_of``,
``open_balance``, ``currency``). A reminder's subject and text are
``reminder_subject`` and ``reminder_body`` (or ``reminder_body_file``),
with the same names. The HTML part is always the
rendered HTML document: change it with the ``html`` renderer's templates.
A template that fails to render makes the delivery dead (retrying cannot
fix it); fix it and ``hub deliveries retry ID``.

Headers: ``Message-ID`` is ``<{delivery key}@{domain of from}>``, the same
on every attempt, so a message sent again after a crash (SMTP has no
idempotency: the hub may have sent it and died before recording it) carries
the same id and mail clients and archives collapse the copies. ``Date`` is
the sending time, not the issue date: the Message-ID is what identifies the
message, the Date says when it left. ``Auto-Submitted: auto-generated``
(RFC 3834) keeps vacation responders quiet.

This module owns the message and its templates; it must not know how the
message leaves (SMTP, a Maildir: :mod:`.email_transport`) nor where its
settings come from (hub.toml: :mod:`.email`).
"""

from __future__ import annotations

import email.policy
from collections.abc import Mapping
from datetime import date, datetime, timezone
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from hub.plugin import Delivery, DeliveryError, Document
from hub.plugin.invoice import local_days

DEFAULT_SUBJECT = "{{ title }} {{ number }} from {{ seller.name }}"
DEFAULT_BODY = """\
{% set credit = kind == "credit_note" %}
Hello {{ buyer.name }},

please find attached {{ "credit note" if credit else "invoice" }} {{ number }} from {{ seller.name }}.

Number:      {{ number }}
{% if credit and invoice.get("refers_to") %}
Credits:     invoice {{ invoice.refers_to }}{% if invoice.get("reason") %} ({{ invoice.reason }}){% endif %}

{% endif %}
{% if period %}
Period:      {{ period }} ({{ first_day }} to {{ last_day }})
{% endif %}
Total:       {{ total }} {{ currency }}
{% if credit %}
Credited:    {{ amount_due }} {{ currency }}
{% else %}
Amount due:  {{ amount_due }} {{ currency }}
{% endif %}
{% if due_date %}
Due date:    {{ due_date }}
{% endif %}
{% if attachments %}
Attached:    {{ attachments|join(", ") }}
{% endif %}

{{ seller.name }}
"""

DEFAULT_REMINDER_SUBJECT = "Reminder: invoice {{ number }} is {{ reminder.days_overdue }} days overdue"
DEFAULT_REMINDER_BODY = """\
Hello {{ buyer.name }},

this is a reminder: invoice {{ number }} from {{ seller.name }}
was due on {{ reminder.due_date }} and is {{ reminder.days_overdue }} days overdue.
Its open balance is {{ reminder.open_balance }} {{ currency }}.

Number:        {{ number }}
Issue date:    {{ issue_date }}
Due date:      {{ reminder.due_date }}
Days overdue:  {{ reminder.days_overdue }} (reminder after {{ reminder.step }} days)
Total:         {{ total }} {{ currency }}
Open balance:  {{ reminder.open_balance }} {{ currency }}
{% if attachments %}
Attached:      {{ attachments|join(", ") }}
{% endif %}

Please pay the open balance now. If you have paid it in the last few
days, please disregard this reminder.

{{ seller.name }}
"""
#: the event of a reminder
OVERDUE_EVENT = "invoice.overdue"


def template_environment() -> SandboxedEnvironment:
    """Where the ``subject`` and ``body`` templates are compiled."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                                trim_blocks=True)


class Composer:
    """Builds the message of a delivery from compiled templates."""

    def __init__(self, sender: Address, domain: str, subject_template: Any, body_template: Any,
                 attach_ubl: bool, reminder_subject_template: Any = None, reminder_body_template: Any = None) -> None:
        self.sender = sender
        self.domain = domain
        self.subject_template = subject_template
        self.body_template = body_template
        env = template_environment()
        self.reminder_subject_template = reminder_subject_template or env.from_string(DEFAULT_REMINDER_SUBJECT)
        self.reminder_body_template = reminder_body_template or env.from_string(DEFAULT_REMINDER_BODY)
        self.attach_ubl = attach_ubl
        #: the documents a message needs
        self.formats: tuple[str, ...] = ("html", "pdf", "ubl") if attach_ubl else ("html", "pdf")

    def message(self, delivery: Delivery, now: datetime | None = None) -> EmailMessage:
        """The message of ``delivery`` (its Message-ID from the key, its Date
        ``now``).

        :raises DeliveryError: permanent: no recipient, a document missing,
            a template that fails.
        """
        invoice = delivery.invoice
        if not delivery.recipient:
            raise DeliveryError(f"account {invoice.get('account')!r} has no email: set email in its [[accounts]] "
                                f"table, then hub deliveries retry", permanent=True)
        missing = [fmt for fmt in self.formats if fmt not in delivery.documents]
        if missing:
            raise DeliveryError(f"no {' or '.join(missing)} document of {invoice.get('number')}: the email exporter "
                                f"needs a renderer of each of {', '.join(self.formats)}", permanent=True)
        html: Document = delivery.documents["html"]
        attachments = [delivery.documents["pdf"]] + ([delivery.documents["ubl"]] if self.attach_ubl else [])
        reminding = delivery.event == OVERDUE_EVENT
        if reminding and not delivery.reminder:
            raise DeliveryError(f"an {OVERDUE_EVENT} delivery of {invoice.get('number')} without its reminder (step, "
                                f"days overdue): the hub gives every one", permanent=True)
        context = _template_context(invoice, delivery.event, [d.file_name for d in attachments], delivery.reminder)
        if reminding:
            subject = _render("reminder_subject", self.reminder_subject_template, context)
            text = _render("reminder_body", self.reminder_body_template, context)
        else:
            subject = _render("subject", self.subject_template, context)
            text = _render("body", self.body_template, context)

        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = self.sender
        buyer = invoice.get("buyer") or {}
        try:
            msg["To"] = Address(display_name=str(buyer.get("name") or ""), addr_spec=delivery.recipient)
        except (ValueError, IndexError, MessageError) as exc:
            raise DeliveryError(f"account {invoice.get('account')!r}: email {delivery.recipient!r} is not an e-mail "
                                f"address: {exc}", permanent=True) from None
        msg["Subject"] = " ".join(subject.split())  # one line: no header injection by a template
        msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
        msg["Message-ID"] = message_id(delivery.key, self.domain)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text, cte="quoted-printable")
        if not reminding:  # a reminder is its text: the HTML document is the invoice, it would hide the reminder
            # the stored HTML document's bytes, as they are (base64: no re-encoding, no line-end changes)
            msg.add_alternative(html.content, maintype="text", subtype="html", cte="base64",
                                params={"charset": _charset(html.media_type)})
        for doc in attachments:
            maintype, _, subtype = doc.media_type.split(";")[0].strip().partition("/")
            msg.add_attachment(doc.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=doc.file_name)
        return msg


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the delivery with idempotency ``key``: the same on
    every attempt."""
    return f"<{key}@{domain}>"


def _render(what: str, template: Any, context: Mapping[str, Any]) -> str:
    try:
        return str(template.render(context))
    except Exception as exc:  # noqa: BLE001 - any template failure is the operator's to fix
        raise DeliveryError(f"{what} template: {type(exc).__name__}: {exc}", permanent=True) from None


def _template_context(invoice: Mapping[str, Any], event: str, attachments: list[str],
                      reminder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What the templates see; ``first_day`` / ``last_day`` are the period's
    days in the buyer's time zone (its period runs midnight to midnight
    there), the last one inclusive."""
    first = last = None
    try:
        zone = ZoneInfo(str((invoice.get("buyer") or {}).get("timezone") or "UTC"))
        first, last = local_days(datetime.fromisoformat(str(invoice["period_start"])),
                                 datetime.fromisoformat(str(invoice["period_end"])), zone)
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError):
        pass
    return {**invoice, "invoice": invoice, "event": event, "attachments": attachments,
            "reminder": dict(reminder) if reminder is not None else None,
            "title": "Credit note" if invoice.get("kind") == "credit_note" else "Invoice",
            "first_day": _iso(first), "last_day": _iso(last)}


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def _charset(media_type: str) -> str:
    for param in media_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"
