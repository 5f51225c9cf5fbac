"""The ``email`` exporter: issued invoices and credit notes, and reminders of overdue invoices, by e-mail (SMTP).

One message per delivery, to the account's ``email`` (``Bcc`` copies to
``bcc``, on the envelope only); what the message holds, its headers and its
templates: :mod:`.email_message`; the SMTP session and how its failures are
classified: :mod:`.email_transport`.

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
    reminder_subject = "Reminder: {{ number }} is {{ reminder.days_overdue }} days overdue"
    reminder_body_file = "config/reminder.txt.j2"  # or reminder_body = '''...''' inline

It delivers ``invoice.issued``, ``credit_note.issued`` and ``invoice.overdue``
(a reminder, once per ``[dunning] after_days`` step: its own subject and
text, the invoice's PDF attached; see :mod:`.email_message`).

Instead of ``host``, ``maildir = "mail"`` writes each message into that
Maildir folder (relative to hub.toml; read it with ``mutt -f mail`` or any
mail client) instead of sending it: for demos and tests, where no SMTP
server is at hand. The file in ``new/`` is named by the delivery key, so a
retry after a crash writes no second copy (exactly once, unlike SMTP).
``bcc`` is not used there.

Failures (the hub retries, backs off and gives up; this exporter makes one
attempt per call): the SMTP ones as :mod:`.email_transport` classifies them;
also permanent (dead at once): an account without ``email`` (named in the
error), a missing HTML or PDF document, a template error. Configuration
errors (the factory refuses; the hub blocks the deliveries until it is
fixed and they are retried): an unset ``password_env`` variable, an
unreadable ``ca_file`` or ``body_file``, a template that does not compile,
``tls = "none"`` to a host that is not loopback.

A failure of the server itself (it cannot be reached, TLS, login) is
remembered for a minute by the instance: the other deliveries of the same
``hub deliver`` run fail with it at once, marked "not attempted", instead of
each waiting out the timeout or failing one more login (one failed login
per run). A refused recipient or message concerns that delivery only.

The password is read from its environment variable when the instance is
built (the host's ``Secret``: masked in any repr) and handed to the
transport only for the login; it is never logged, and every error text is
scrubbed of it before it leaves this module.

This module owns the instance: its configuration, the choice of transport,
the memory of a failing server and the scrubbing of the password. It must
not know how a message is built or how SMTP is spoken.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import ssl
import time
from datetime import datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from hub.plugin import Delivery, DeliveryError, ExporterType, InstanceConfig, Secret, hookimpl

from .email_message import (
    DEFAULT_BODY,
    DEFAULT_REMINDER_BODY,
    DEFAULT_REMINDER_SUBJECT,
    DEFAULT_SUBJECT,
    Composer,
    message_id,
    template_environment,
)
from .email_transport import Failure, SmtpTransport, refusals, write_maildir

log = logging.getLogger("hub.exporters.email")

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_TIMEOUT = 30.0
#: how long a failure of the server itself is reused for the next deliveries
TRIP_SECONDS = 60.0

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
        "reminder_subject": {"type": "string", "minLength": 1,
                             "description": "Jinja2 template of a reminder's subject (invoice.overdue)."},
        "reminder_body": {"type": "string", "minLength": 1,
                          "description": "Jinja2 template of a reminder's text (invoice.overdue)."},
        "reminder_body_file": {"type": "string", "minLength": 1,
                               "description": "A file holding a reminder's text template (relative to hub.toml)."},
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
        description="Invoices, credit notes and reminders by e-mail: SMTP with STARTTLS or TLS, HTML and text, "
                    "PDF attached.",
        config_schema=CONFIG_SCHEMA,
        factory=EmailExporter,
        events=("invoice.issued", "credit_note.issued", "invoice.overdue"),
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
        self.context: ssl.SSLContext | None = None
        if self.host is not None and self.tls != "none":
            cafile = config.path(o["ca_file"]) if o.get("ca_file") else None
            try:
                # verification on, hostname checked, TLS 1.2+: the library's defaults
                self.context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
            except (OSError, ssl.SSLError) as exc:
                raise EmailConfigError(f"ca_file: cannot load {cafile}: {exc}") from None
        env = template_environment()
        subject_template, body_template = self._templates(config, env, "", DEFAULT_SUBJECT, DEFAULT_BODY)
        reminder_subject, reminder_body = self._templates(config, env, "reminder_", DEFAULT_REMINDER_SUBJECT,
                                                          DEFAULT_REMINDER_BODY)
        self.composer = Composer(self.sender, self.domain, subject_template, body_template, self.attach_ubl,
                                 reminder_subject, reminder_body)
        self.formats = self.composer.formats
        self.transport = SmtpTransport(self.host, self.port, self.tls, self.context, self.timeout, self.username,
                                       self.sender.addr_spec, self.bcc) if self.host is not None else None
        self._tripped: tuple[DeliveryError, float] | None = None

    @staticmethod
    def _templates(config: InstanceConfig, env: Any, prefix: str, subject: str, body: str) -> tuple[Any, Any]:
        """The compiled ``<prefix>subject`` and ``<prefix>body`` (or ``<prefix>body_file``) templates, ``subject``
        and ``body`` by default: the issue's (prefix "") and the reminder's (prefix "reminder_")."""
        o = config.options
        if o.get(f"{prefix}body") is not None and o.get(f"{prefix}body_file") is not None:
            raise EmailConfigError(f"set {prefix}body (a template) or {prefix}body_file (a file holding one), not both")
        if o.get(f"{prefix}body_file") is not None:
            path = config.path(o[f"{prefix}body_file"])
            try:
                body = path.read_text("utf-8")
            except (OSError, UnicodeError) as exc:
                raise EmailConfigError(f"{prefix}body_file: cannot read {path}: {exc}") from None
        elif o.get(f"{prefix}body") is not None:
            body = o[f"{prefix}body"]
        compiled = []
        for key, text in ((f"{prefix}subject", o.get(f"{prefix}subject", subject)), (f"{prefix}body", body)):
            try:
                compiled.append(env.from_string(text))
            except TemplateError as exc:
                raise EmailConfigError(f"{key}: the template does not compile: {exc}") from None
        return compiled[0], compiled[1]

    def message(self, delivery: Delivery, now: datetime | None = None) -> EmailMessage:
        """The message of ``delivery`` (its Message-ID from the key, its Date
        ``now``).

        :raises DeliveryError: permanent: no recipient, a document missing,
            a template that fails.
        """
        return self.composer.message(delivery, now)

    def deliver(self, delivery: Delivery) -> str:
        """Send (or file) the message once; its Message-ID is the external id."""
        msg = self.message(delivery)
        mid = str(msg["Message-ID"])
        if self.maildir is not None:
            write_maildir(self.maildir, delivery.key, msg)
            return mid
        assert self.transport is not None, "the factory wants host or maildir"
        if self._tripped is not None:
            error, at = self._tripped
            if time.monotonic() - at < TRIP_SECONDS:
                raise DeliveryError(f"{error} (not attempted: the same failure on another delivery of this run)",
                                    permanent=error.permanent)
            self._tripped = None
        try:
            refused = self.transport.send(msg, delivery.recipient or "", self._password())
        except Failure as failure:
            error = DeliveryError(self._scrub(str(failure)), permanent=failure.permanent)
            if failure.server:
                self._tripped = (error, time.monotonic())
            raise error from None
        if refused:
            log.warning("%s: %s sent to %s; the server refused the bcc %s", self.name, mid, delivery.recipient,
                        self._scrub(refusals(refused)))
        return mid

    def _password(self) -> str | None:
        return self._secret.reveal() if self._secret is not None else None

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


__all__ = ["CONFIG_SCHEMA", "EmailConfigError", "EmailExporter", "is_loopback", "message_id", "write_maildir"]
