"""The ``email`` exporter: issued invoices and credit notes by e-mail (SMTP).

One message per delivery, to the account's ``email`` (``Bcc`` copies to
``bcc``, on the envelope only)::

    multipart/mixed
      multipart/alternative
        text/plain   the ``body`` template: number, period, total, amount due, due date
        text/html    the invoice's rendered HTML document, as stored
      application/pdf   the stored PDF document, byte for byte, under its file name
      application/xml   the UBL document, when ``attach_ubl = true``

Configuration (``[[exporters]]`` with ``type = "email"``)::

    [[exporters]]
    name = "mail"
    type = "email"
    host = "smtp.example.com"
    port = 587                        # default: 587 (starttls), 465 (ssl), 25 (none)
    tls = "starttls"                  # starttls | ssl | none (none: loopback hosts only)
    username = "billing@example.com"
    password_env = "SMTP_PASSWORD"    # the password's environment variable, never the password
    from = "Example Cloud Billing <billing@example.com>"
    bcc = "archive@example.com"       # or a list
    ca_file = "config/private-ca.pem" # a private CA (relative to hub.toml); verification is always on
    timeout = 30                      # seconds, per network operation
    attach_ubl = false
    subject = "{{ title }} {{ number }} from {{ seller.name }}"
    body_file = "config/mail.txt.j2"  # or body = '''...''' inline

Instead of ``host``, ``maildir = "mail"`` writes each message into that
Maildir folder (relative to hub.toml; read it with ``mutt -f mail`` or any
mail client) instead of sending it: for demos and tests, where no SMTP
server is at hand. The file in ``new/`` is named by the delivery key, so a
retry after a crash writes no second copy (exactly once, unlike SMTP).
``bcc`` is not used there.

Templates: ``subject`` and ``body`` (or ``body_file``) are Jinja2 templates
(sandboxed, undefined names are errors) of the plain-text part. They see
the invoice's fields as ``hub invoices show NUMBER --json`` prints them
(``number``, ``kind``, ``seller.name``, ``buyer.name``, ``total``,
``amount_due``, ``currency``, ``period``, ``due_date``, ``refers_to``...), the
whole of it as ``invoice``, and ``title`` ("Invoice" or "Credit note"),
``first_day`` / ``last_day`` (the period's dates, both inclusive),
``attachments`` (file names) and ``event``. The HTML part is always the
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

Failures (the hub retries, backs off and gives up; this exporter makes one
attempt per call and classifies):

- transient (retried): a 4xx reply (421, 450, 451, 452, 454...); a
  connection refused, reset or timed out; a TLS handshake or certificate
  failure and a server that does not offer STARTTLS (Postfix with
  ``smtp_tls_security_level = verify`` defers those too: a certificate is
  renewed, a man in the middle goes away). Nothing is ever sent in clear
  text when TLS was asked for.
- refused credentials or clear text: 530 "must issue STARTTLS" (the
  server needs ``tls = "starttls"``), 535 bad credentials, a server that
  offers no AUTH: retried with the hub's backoff, so fixing hub.toml or the
  password's variable takes effect by itself, then dead after
  ``max_attempts`` with the SMTP error kept. One failed login per run: the
  run's other deliveries are not attempted.
- permanent (dead at once): another 5xx reply: 550 recipient refused, 552
  too large, 553, 554. Also: an account without ``email`` (named in the
  error), a missing HTML or PDF document, a template error.
- configuration (the factory refuses; the hub blocks the deliveries until
  it is fixed and they are retried): an unset ``password_env`` variable, an
  unreadable ``ca_file`` or ``body_file``, a template that does not
  compile, ``tls = "none"`` to a host that is not loopback.

The session: EHLO, STARTTLS (``starttls``) or TLS from the first byte
(``ssl``), one AUTH (PLAIN, else LOGIN: not ``smtplib``'s ``login``, which
tries every mechanism with the same password, two failed logins for one),
MAIL FROM with SIZE, RCPT TO the account's address first: if the server
refuses it the transaction ends before DATA and the bcc get no copy either;
a refused bcc address does not stop the message (logged as a warning).

A failure of the server itself (it cannot be reached, TLS, login) is
remembered for a minute by the instance: the other deliveries of the same
``hub deliver`` run fail with it at once, marked "not attempted", instead of
each waiting out the timeout or failing one more login. A refused recipient
or message concerns that delivery only.

The password is read from its environment variable when the instance is
built (the host's ``Secret``: masked in any repr) and handed to ``smtplib``
only at login; it is never logged, and every error text is scrubbed of it
before it leaves this module.
"""

from __future__ import annotations

import base64
import email.policy
import ipaddress
import logging
import mailbox
import os
import smtplib
import ssl
import time
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from hub.hookspecs import hookimpl
from hub.plugin_types import Delivery, DeliveryError, Document, ExporterType, InstanceConfig, Secret

log = logging.getLogger("hub.exporters.email")

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0
#: how long a failure of the server itself is reused for the next deliveries
TRIP_SECONDS = 60.0

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

#: hosts to which ``tls = "none"`` is allowed (the factory also takes all of 127.0.0.0/8 and ::1 however written)
LOOPBACK_PATTERN = r"^(localhost|127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|::1|\[::1\])$"

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["from"],
    "properties": {
        "host": {"type": "string", "minLength": 1, "description": "The SMTP server (or set maildir)."},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535,
                 "description": "Default: 587 for starttls, 465 for ssl, 25 for none."},
        "tls": {"enum": ["starttls", "ssl", "none"], "default": "starttls",
                "description": "starttls (upgrade, port 587), ssl (implicit TLS, port 465) or none "
                               "(clear text: only to a loopback host). Certificates are always verified."},
        "username": {"type": "string", "minLength": 1, "description": "The login; needs password_env."},
        "password_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                         "description": "The environment variable holding the password."},
        "from": {"type": "string", "minLength": 3,
                 "description": "The sender: an address, or \"Name <address>\"; its domain ends the Message-ID."},
        "bcc": {"oneOf": [{"type": "string", "minLength": 3},
                          {"type": "array", "items": {"type": "string", "minLength": 3}}],
                "description": "Blind copies (an address or a list), on the envelope only."},
        "ca_file": {"type": "string", "minLength": 1,
                    "description": "PEM file of a private CA to trust (relative to hub.toml)."},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "default": DEFAULT_TIMEOUT,
                    "description": "Seconds each network operation may take."},
        "attach_ubl": {"type": "boolean", "default": False, "description": "Also attach the UBL XML."},
        "subject": {"type": "string", "minLength": 1, "default": DEFAULT_SUBJECT,
                    "description": "Jinja2 template of the subject."},
        "body": {"type": "string", "minLength": 1, "description": "Jinja2 template of the plain-text part."},
        "body_file": {"type": "string", "minLength": 1,
                      "description": "A file holding the plain-text part's template (relative to hub.toml)."},
        "maildir": {"type": "string", "minLength": 1,
                    "description": "Write the messages into this Maildir folder instead of sending them."},
    },
    "dependentRequired": {"username": ["password_env"], "password_env": ["username"]},
    "allOf": [
        # no server: a maildir it is
        {"if": {"not": {"required": ["maildir"]}}, "then": {"required": ["host"]}},
        # clear text only to loopback (the factory says why, for callers that skip the schema)
        {"if": {"required": ["host"], "properties": {"host": {"not": {"pattern": LOOPBACK_PATTERN}}}},
         "then": {"properties": {"tls": {"enum": ["starttls", "ssl"]}}}},
    ],
}


@hookimpl
def hub_register_exporter_types() -> list[ExporterType]:
    return [ExporterType(
        name="email",
        description="Invoices and credit notes by e-mail: SMTP with STARTTLS or TLS, HTML and text, PDF attached.",
        config_schema=CONFIG_SCHEMA,
        factory=EmailExporter,
        events=("invoice.issued", "credit_note.issued"),
    )]


class EmailConfigError(ValueError):
    """The instance's configuration cannot work (raised by the factory)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost``, 127.0.0.0/8, ::1."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Failure(Exception):
    """One attempt's failure: its text, whether it is permanent, and whether
    it is the server's (unreachable, TLS, login) rather than this message's."""

    def __init__(self, message: str, *, permanent: bool, server: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.server = server


class EmailExporter:
    """An ``email`` instance (the factory): validates the configuration,
    loads the CA and compiles the templates once."""

    def __init__(self, config: InstanceConfig) -> None:
        o = config.options
        self.name = config.name
        self.host: str | None = o.get("host")
        self.maildir: Path | None = config.path(o["maildir"]) if o.get("maildir") else None
        if self.host is not None and self.maildir is not None:
            raise EmailConfigError("set host (send by SMTP) or maildir (write into a folder), not both")
        if self.host is None and self.maildir is None:
            raise EmailConfigError("set host (an SMTP server) or maildir (a folder to write the messages into)")
        self.tls: str = o.get("tls", "starttls")
        if self.tls not in DEFAULT_PORTS:
            raise EmailConfigError(f"tls: {self.tls!r} is not one of: starttls, ssl, none")
        if self.host is not None and self.tls == "none" and not is_loopback(self.host):
            raise EmailConfigError(
                f'tls = "none" is allowed only to a loopback host (localhost, 127.0.0.0/8, ::1), not {self.host!r}: '
                f'the password and the invoices would cross the network in clear text; use tls = "starttls" or "ssl"')
        self.port: int = int(o.get("port") or DEFAULT_PORTS[self.tls])
        self.timeout = float(o.get("timeout", DEFAULT_TIMEOUT))
        self.username: str | None = o.get("username")
        if (self.username is None) != (o.get("password_env") is None):
            raise EmailConfigError("username and password_env go together: set both (to log in) or neither")
        self._secret: Secret | None = None
        if self.username is not None:
            try:  # read now, so an unset variable stops the instance (the hub blocks its deliveries)
                self._secret = config.secret("password")
            except KeyError as exc:
                raise EmailConfigError(f"password_env: {exc.args[0]}") from None
        name, addr = parseaddr(o["from"])
        if "@" not in addr or not addr.rpartition("@")[2] or not addr.partition("@")[0]:
            raise EmailConfigError(f'from: {o["from"]!r} is not an e-mail address such as '
                                   f'"Billing <billing@example.com>"')
        try:
            self.sender = Address(display_name=name, addr_spec=addr)
        except (ValueError, IndexError, MessageError) as exc:  # what email's address parser raises
            raise EmailConfigError(f"from: {o['from']!r} is not an e-mail address: {exc}") from None
        self.domain = addr.rpartition("@")[2]
        bcc = o.get("bcc") or []
        self.bcc: tuple[str, ...] = (bcc,) if isinstance(bcc, str) else tuple(bcc)
        for address in self.bcc:
            if "@" not in parseaddr(address)[1]:
                raise EmailConfigError(f"bcc: {address!r} is not an e-mail address")
        self.attach_ubl = bool(o.get("attach_ubl", False))
        self.formats: tuple[str, ...] = ("html", "pdf", "ubl") if self.attach_ubl else ("html", "pdf")
        self.context: ssl.SSLContext | None = None
        if self.host is not None and self.tls != "none":
            cafile = config.path(o["ca_file"]) if o.get("ca_file") else None
            try:
                # verification on, hostname checked, TLS 1.2+: the library's defaults
                self.context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
            except (OSError, ssl.SSLError) as exc:
                raise EmailConfigError(f"ca_file: cannot load {cafile}: {exc}") from None
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                                   trim_blocks=True)
        if o.get("body") is not None and o.get("body_file") is not None:
            raise EmailConfigError("set body (a template) or body_file (a file holding one), not both")
        body = o.get("body")
        if o.get("body_file") is not None:
            path = config.path(o["body_file"])
            try:
                body = path.read_text("utf-8")
            except (OSError, UnicodeError) as exc:
                raise EmailConfigError(f"body_file: cannot read {path}: {exc}") from None
        try:
            self.subject_template = env.from_string(o.get("subject", DEFAULT_SUBJECT))
        except TemplateError as exc:
            raise EmailConfigError(f"subject: the template does not compile: {exc}") from None
        try:
            self.body_template = env.from_string(body if body is not None else DEFAULT_BODY)
        except TemplateError as exc:
            raise EmailConfigError(f"body: the template does not compile: {exc}") from None
        self._tripped: tuple[DeliveryError, float] | None = None

    # ------------------------------------------------------------------
    # The message

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
        context = _template_context(invoice, delivery.event, [d.file_name for d in attachments])
        subject = self._render("subject", self.subject_template, context)
        text = self._render("body", self.body_template, context)

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
        # the stored HTML document's bytes, as they are (base64: no re-encoding, no line-end changes)
        msg.add_alternative(html.content, maintype="text", subtype="html", cte="base64",
                            params={"charset": _charset(html.media_type)})
        for doc in attachments:
            maintype, _, subtype = doc.media_type.split(";")[0].strip().partition("/")
            msg.add_attachment(doc.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=doc.file_name)
        return msg

    def _render(self, what: str, template: Any, context: Mapping[str, Any]) -> str:
        try:
            return str(template.render(context))
        except Exception as exc:  # noqa: BLE001 - any template failure is the operator's to fix
            raise DeliveryError(f"{what} template: {type(exc).__name__}: {exc}", permanent=True) from None

    # ------------------------------------------------------------------
    # Delivering

    def deliver(self, delivery: Delivery) -> str:
        """Send (or file) the message once; its Message-ID is the external id."""
        msg = self.message(delivery)
        mid = str(msg["Message-ID"])
        if self.maildir is not None:
            write_maildir(self.maildir, delivery.key, msg)
            return mid
        if self._tripped is not None:
            error, at = self._tripped
            if time.monotonic() - at < TRIP_SECONDS:
                raise DeliveryError(f"{error} (not attempted: the same failure on another delivery of this run)",
                                    permanent=error.permanent)
            self._tripped = None
        try:
            refused = self._send(msg, delivery.recipient or "")
        except _Failure as failure:
            error = DeliveryError(self._scrub(str(failure)), permanent=failure.permanent)
            if failure.server:
                self._tripped = (error, time.monotonic())
            raise error from None
        if refused:
            log.warning("%s: %s sent to %s; the server refused the bcc %s", self.name, mid, delivery.recipient,
                        self._scrub(_refusals(refused)))
        return mid

    def _password(self) -> str | None:
        return self._secret.reveal() if self._secret is not None else None

    def _send(self, msg: EmailMessage, recipient: str) -> dict[str, tuple[int, bytes]]:
        """One SMTP session sending ``msg`` to ``recipient`` and the bcc; the
        bcc addresses the server refused. The recipient is asked for first:
        when the server refuses it, the transaction is abandoned before DATA
        and nobody gets a copy."""
        where = f"{self.host}:{self.port}"
        password = self._password()
        data = msg.as_bytes()  # policy SMTP: CRLF; 7-bit (quoted-printable, base64, RFC 2047 headers)
        stage = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            if self.tls == "ssl":
                smtp = smtplib.SMTP_SSL(self.host or "", self.port, timeout=self.timeout, context=self.context)
            else:
                smtp = smtplib.SMTP(self.host or "", self.port, timeout=self.timeout)
            stage = "EHLO"
            smtp.ehlo()
            if self.tls == "starttls":
                stage = "STARTTLS"
                if not smtp.has_extn("starttls"):
                    raise _Failure(f"{where} STARTTLS: the server does not offer STARTTLS; not sending in clear "
                                   f"text (tls = \"starttls\")", permanent=False, server=True)
                smtp.starttls(context=self.context)
                smtp.ehlo()
            if self.username is not None:
                stage = "AUTH"
                if not smtp.has_extn("auth"):
                    hint = ' before TLS: set tls = "starttls"' if self.tls == "none" else ""
                    raise _Failure(f"{where} AUTH: the server does not offer AUTH{hint}", permanent=False, server=True)
                _login(smtp, self.username, password or "", where)
            stage = "MAIL FROM"
            options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
            code, reply = smtp.mail(self.sender.addr_spec, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, self.sender.addr_spec)
            stage = "RCPT TO"
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise _Failure(f"{where} RCPT TO: {code} {_text(reply)}", permanent=code >= 500, server=False)
            refused: dict[str, tuple[int, bytes]] = {}
            for address in self.bcc:
                code, reply = smtp.rcpt(address)
                if code not in (250, 251):
                    refused[address] = (code, reply)
            stage = "DATA"
            code, reply = smtp.data(data)
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
            return refused
        except smtplib.SMTPResponseException as exc:
            stage = {smtplib.SMTPAuthenticationError: "AUTH", smtplib.SMTPHeloError: "EHLO"}.get(type(exc), stage)
            text = f"{where} {stage}: {exc.smtp_code} {_text(exc.smtp_error)}"
            if exc.smtp_code == 530 and self.tls == "none":
                text += ' (the server requires TLS: set tls = "starttls")'
            server = stage in ("EHLO", "STARTTLS", "AUTH") or exc.smtp_code in (421, 530)
            # Refused credentials or clear text (530, 535...) are the
            # operator's to fix in hub.toml or the environment: retried with
            # backoff (so the fix is picked up), then dead after max_attempts.
            permanent = exc.smtp_code >= 500 and not (stage == "AUTH" or exc.smtp_code in AUTH_CODES)
            raise _Failure(text, permanent=permanent, server=server) from None
        except ssl.SSLCertVerificationError as exc:
            raise _Failure(f"{where} {stage}: the server's certificate is not trusted: {exc.verify_message} "
                           f"(a private CA? set ca_file)", permanent=False, server=True) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, DNS, TLS, disconnected
            raise _Failure(f"{where} {stage}: {type(exc).__name__}: {exc}", permanent=False, server=True) from None
        finally:
            if smtp is not None:
                _close(smtp)

    def _scrub(self, text: str) -> str:
        """``text`` without the password (plain, or as AUTH PLAIN/LOGIN send it)."""
        secret = self._password()
        if not secret:
            return text
        forms = {secret, base64.b64encode(secret.encode()).decode(),
                 base64.b64encode(f"\0{self.username}\0{secret}".encode()).decode()}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the delivery with idempotency ``key``: the same on
    every attempt."""
    return f"<{key}@{domain}>"


def write_maildir(folder: Path, key: str, msg: EmailMessage) -> None:
    """File ``msg`` in the Maildir ``folder`` (made if missing) under ``key``,
    once: written to ``tmp/`` and linked into ``new/``, so a retry after a
    crash finds it there (or in ``cur/``, once read) and writes nothing."""
    mailbox.Maildir(str(folder), create=True)  # tmp/, new/, cur/
    if (folder / "new" / key).exists() or any((folder / "cur").glob(f"{key}:*")) or (folder / "cur" / key).exists():
        return
    tmp = folder / "tmp" / f"{key}.{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(msg.as_bytes(policy=email.policy.default))  # LF line ends, as Maildir readers expect
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, folder / "new" / key)
    except FileExistsError:
        pass  # another worker filed it first
    finally:
        tmp.unlink()


def _template_context(invoice: Mapping[str, Any], event: str, attachments: list[str]) -> dict[str, Any]:
    """What the templates see; ``first_day`` / ``last_day`` are the period's
    days in the buyer's time zone (its period runs midnight to midnight
    there), the last one inclusive."""
    first = last = None
    try:
        zone = ZoneInfo(str((invoice.get("buyer") or {}).get("timezone") or "UTC"))
        start = datetime.fromisoformat(str(invoice["period_start"])).astimezone(zone)
        end = datetime.fromisoformat(str(invoice["period_end"])).astimezone(zone)
        first = start.date()
        last = end.date() - timedelta(days=1) if end.time() == datetime.min.time() else end.date()
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError):
        pass
    return {**invoice, "invoice": invoice, "event": event, "attachments": attachments,
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


def _text(reply: bytes | str) -> str:
    """A server's reply on one line (smtplib joins the lines of a multi-line reply with newlines)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{code} {_text(text)}" for code, text in refused.values())


#: SMTP replies about the session's credentials or encryption (RFC 4954, 3207)
AUTH_CODES = frozenset({530, 534, 535, 538})


def _login(smtp: smtplib.SMTP, user: str, password: str, where: str) -> None:
    """AUTH PLAIN (or LOGIN), once. Not ``smtplib.SMTP.login``: on a 535 it
    tries the next mechanism with the same password, a second failed login
    towards the provider's lockout for nothing. The session is TLS (or
    loopback), so PLAIN is fine; CRAM-MD5 is obsolete."""
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise _Failure(f"{where} AUTH: the server offers {' '.join(offered) or 'no mechanism'}; the hub logs in "
                       f"with PLAIN or LOGIN", permanent=True, server=True)
    smtp.user, smtp.password = user, password
    smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))


def _close(smtp: smtplib.SMTP) -> None:
    """End the session: QUIT if it still answers. A failure here changes
    nothing: the server has the message or it refused it already."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
