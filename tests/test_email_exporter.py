"""The ``email`` exporter against a real SMTP server: aiosmtpd on
127.0.0.1 with STARTTLS required before anything and AUTH required before
mail, its certificate self-signed here and trusted through ``ca_file``.

Invoices are issued in a workspace (SQLite and PostgreSQL) and delivered
with ``hub deliver`` (or the worker with a chosen clock, to step over the
backoff). The HTML and PDF documents come from small fake renderers
registered like a third party's, so these tests do not depend on the
bundled ones; the PDF is binary on purpose (every byte value) so that the
attachment's bytes are compared for real.

The password is distinctive and every test checks, at its end, that it
never showed in the output of a ``hub`` command or in a log record of the
hub (the server's own debug log is not the hub's and is left out).
"""

from __future__ import annotations

import base64
import email
import email.policy
import errno
import importlib.metadata as md
import json
import logging
import mailbox
import os
import shutil
import socket
import ssl
import subprocess
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aiosmtpd")

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

import hub_plugins.exporters.email as email_plugin  # noqa: E402
from hub.config import load_config  # noqa: E402
from hub.documents import read_document  # noqa: E402
from hub.hookspecs import ENTRY_POINT_GROUP, hookimpl  # noqa: E402
from hub.host import Host, build_host  # noqa: E402
from hub.outbox import backoff, deliver_pending, delivery_key, list_deliveries  # noqa: E402
from hub.plugin_types import Delivery, Document, InstanceConfig, RenderContext, RendererType  # noqa: E402
from hub.store.db import open_store  # noqa: E402
from hub_plugins.exporters.email import EmailConfigError, EmailExporter  # noqa: E402
from tests.conftest import HEADER  # noqa: E402
from tests.test_invoices import BASE  # noqa: E402

ENV = "HUB_TEST_SMTP_PASSWORD"
USER = "hub"
PASSWORD = "Zq9-hub-SMTP-s3cret!"
WRONG = "Wr0ng-hub-SMTP-guess!"
SENDER = "billing@hub-cloud.example"
ARCHIVE = "archive@hub-cloud.example"

ACCOUNTS = """
[[accounts]]
id = "acme"
name = "ACME GmbH"
country = "DE"
email = "billing@acme.example"

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
vat_id = "FR40303265045"
timezone = "Europe/Paris"
email = "compta@globex.example"

[[accounts]]
id = "initech"
name = "Initech Inc."
country = "US"
"""

# acme: 200 vCPU-h (10.00) + 12.5 GB (1.00) + 19 % = 13.09; globex (reverse charge): 1.20; initech: 2.00
USAGE = HEADER + "".join([
    "a1,acme,vm-1,compute.vcpu,2025-10-10T00:00:00Z,2025-10-14T04:00:00Z,2\n",
    "a2,acme,vm-1,network.egress,2025-10-12T00:00:00Z,2025-10-12T00:00:00Z,12.5\n",
    "g1,globex,vm-2,compute.vcpu,2025-10-10T00:00:00Z,2025-10-11T00:00:00Z,1\n",
    "i1,initech,vm-3,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T10:00:00Z,4\n",
])

ACME, GLOBEX, INITECH = "INV-2025-000001", "INV-2025-000002", "INV-2025-000003"


def mid(number: str, event: str = "invoice.issued") -> str:
    """The Message-ID the exporter ``mail`` must give ``number``'s message."""
    return f"<{delivery_key(number, 'mail', event)}@hub-cloud.example>"


# --------------------------------------------------------------------------
# Fake renderers: html, pdf, ubl


def fake_pdf(number: str) -> bytes:
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) + number.encode() + b"\r\n%%EOF\n"


class FakeHtml:
    format, requires = "html", ()

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        page = (f"<!DOCTYPE html>\r\n<html><body><h1>Invoice {invoice['number']}</h1>\n"
                f"<p>{invoice['buyer']['name']} \u2014 {invoice['total']} \u20ac</p></body></html>\n")
        return Document(f"{invoice['number']}.html", "text/html; charset=utf-8", page.encode())


class FakePdf:
    format, requires = "pdf", ()

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        return Document(f"{invoice['number']}.pdf", "application/pdf", fake_pdf(invoice["number"]))


class FakeUbl:
    format, requires = "ubl", ()

    def __init__(self, config: Any) -> None:
        pass

    def render(self, invoice: Mapping[str, Any], context: RenderContext) -> Document:
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice><ID>{invoice["number"]}</ID></Invoice>\n'
        return Document(f"{invoice['number']}.xml", "application/xml", xml.encode())


@hookimpl
def _renderer_types() -> list[RendererType]:
    return [RendererType(name=cls.format, description=cls.format, config_schema={"type": "object"}, factory=cls)
            for cls in (FakeHtml, FakePdf, FakeUbl)]


FAKE_RENDERERS = types.ModuleType("fake_document_renderers")
FAKE_RENDERERS.hub_register_renderer_types = _renderer_types  # type: ignore[attr-defined]


def email_host() -> Host:
    """The CSV source, this exporter (registered as its entry point will)
    and the fake renderers: no other plugin."""
    csv = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "csv"]
    return build_host(csv, extra_plugins=[("email", email_plugin), ("fake_renderers", FAKE_RENDERERS)])


# --------------------------------------------------------------------------
# The SMTP server


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    authenticated: bool
    tls: bool
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        """The message as a mailbox stores it (CRLF line ends, the wire's, made LF)."""
        return email.message_from_bytes(self.raw.replace(b"\r\n", b"\n"),  # type: ignore[return-value]
                                        policy=email.policy.default)


class SmtpServer:
    """aiosmtpd on 127.0.0.1: STARTTLS required (or implicit TLS), AUTH
    required after it, recipients refused on demand, DATA answers scripted."""

    def __init__(self, certs: tuple[Path, Path], *, implicit_tls: bool = False, **smtp_options: Any) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.data_ids: list[str] = []  # the Message-ID of every DATA, accepted or not
        self.logins: list[bytes] = []  # the user of every AUTH
        self.refuse: set[str] = set()
        self.data_replies: list[str] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(certs[0]), str(certs[1]))
        # aiosmtpd does not see implicit TLS as TLS (it offers AUTH only after STARTTLS): there every
        # connection is TLS anyway, so AUTH is not made to wait for a STARTTLS that cannot come
        tls = ({"ssl_context": context, "auth_require_tls": False} if implicit_tls
               else {"tls_context": context, "require_starttls": True, "auth_require_tls": True})
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=self._auth,
                                     auth_required=True, **tls, **smtp_options)
        self.running = False

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
        self.logins.append(data.login if isinstance(data, LoginPassword) else b"?")
        return AuthResult(success=ok, handled=False)  # handled=True would leave the client without a reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        self.data_ids.append(str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]))
        if self.data_replies:
            return self.data_replies.pop(0)
        tls = server.transport.get_extra_info("ssl_object") is not None  # after STARTTLS, or implicit
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bool(session.authenticated),
                                      tls, raw))
        return "250 2.0.0 Ok: queued"

    def start(self) -> None:
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        _certs_with_cryptography(cert, key)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor openssl is here to make a certificate")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                        "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return cert, key


def _certs_with_cryptography(cert_path: Path, key_path: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


@pytest.fixture
def smtp(certs: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(certs)
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------
# The workspace

#: the output of every hub command of the test, checked for the password at its end
OUTPUTS: list[str] = []


@pytest.fixture(autouse=True)
def _email_hub(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", email_host)  # where the CLI's workspace builds its host
    monkeypatch.setenv(ENV, PASSWORD)
    OUTPUTS.clear()
    caplog.set_level(logging.DEBUG, logger="hub")
    yield
    hub_logs = [r.getMessage() for r in caplog.records if r.name.startswith("hub")]
    for secret in (PASSWORD, WRONG):
        forms = (secret, base64.b64encode(secret.encode()).decode(),
                 base64.b64encode(f"\0{USER}\0{secret}".encode()).decode())
        for text in OUTPUTS + hub_logs:
            assert not any(form in text for form in forms), f"the password leaked into: {text}"


def run(workspace, *args: str) -> Any:
    """``hub ARGS`` in the workspace; its output is kept for the password check."""
    result = workspace.hub(*args)
    OUTPUTS.append(result.output)
    return result


def run_json(workspace, *args: str) -> Any:
    result = run(workspace, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)  # a string or a list of strings: the same in TOML


def exporter(server: SmtpServer | None, certs: tuple[Path, Path] | None, **changes: Any) -> str:
    """The ``[[exporters]]`` table of instance ``mail``: STARTTLS to
    ``server`` with login; ``changes`` set keys (None removes one)."""
    options: dict[str, Any] = {
        "host": "127.0.0.1", "port": server.port if server else 25, "tls": "starttls", "username": USER,
        "password_env": ENV, "from": f"Hub Cloud Billing <{SENDER}>", "bcc": ARCHIVE,
        "ca_file": str(certs[0]) if certs else None, "accounts": ["acme", "globex"], "timeout": 10,
    }
    options.update(changes)
    lines = ['[[exporters]]', 'name = "mail"', 'type = "email"']
    lines += [f"{k} = {toml_value(v)}" for k, v in options.items() if v is not None]
    return "\n".join(lines) + "\n"


def issue(workspace, exporters: str) -> None:
    workspace.config(BASE + ACCOUNTS + exporters)
    workspace.write("usage/2025-10.csv", USAGE, dedent=False)
    pulled = run(workspace, "pull")
    assert pulled.exit_code == 0, pulled.output
    issued = run(workspace, "invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output


def runtime(workspace):
    host = email_host()
    config = load_config(workspace.config_path, host)
    return config, host, open_store(config.hub.database, config.base_dir)


def deliveries(workspace) -> list[tuple]:
    return [(d["number"], d["status"], d["attempts"], d["external_id"], d["last_error"])
            for d in run_json(workspace, "deliveries")]


# --------------------------------------------------------------------------
# Delivered


ACME_TEXT = """\
Hello ACME GmbH,

please find attached invoice INV-2025-000001 from Hub Cloud GmbH.

Number:      INV-2025-000001
Period:      2025-10 (2025-10-01 to 2025-10-31)
Total:       13.09 EUR
Amount due:  13.09 EUR
Due date:    2025-11-17
Attached:    INV-2025-000001.pdf

Hub Cloud GmbH
"""


def test_issued_invoices_arrive_by_mail_over_starttls_with_login_through_hub_deliver(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs))
    started = datetime.now(timezone.utc).replace(microsecond=0)
    result = run(workspace, "deliver")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "deliver: 2 delivered"
    assert [(m.mail_from, m.rcpt_tos, m.authenticated, m.tls) for m in smtp.received] == [
        (SENDER, ["billing@acme.example", ARCHIVE], True, True),
        (SENDER, ["compta@globex.example", ARCHIVE], True, True)]
    assert smtp.logins == [b"hub", b"hub"]
    acme, globex = (r.message for r in smtp.received)
    assert [(m["From"], m["To"], m["Subject"], m["Message-ID"], m["Auto-Submitted"]) for m in (acme, globex)] == [
        ("Hub Cloud Billing <billing@hub-cloud.example>", "ACME GmbH <billing@acme.example>",
         "Invoice INV-2025-000001 from Hub Cloud GmbH", mid(ACME), "auto-generated"),
        ("Hub Cloud Billing <billing@hub-cloud.example>", "Globex SARL <compta@globex.example>",
         "Invoice INV-2025-000002 from Hub Cloud GmbH", mid(GLOBEX), "auto-generated")]
    assert "Bcc" not in acme  # the archive copy is on the envelope only
    # Date: when it was sent (not the issue date, 2025-11-03)
    assert started <= parsedate_to_datetime(acme["Date"]) <= datetime.now(timezone.utc)
    assert deliveries(workspace) == [(ACME, "delivered", 1, mid(ACME), None),
                                     (GLOBEX, "delivered", 1, mid(GLOBEX), None)]
    assert run(workspace, "deliver").stdout.strip() == "deliver: nothing due"
    assert len(smtp.received) == 2


def test_the_message_is_text_and_html_alternatives_with_the_stored_pdf_attached_byte_for_byte(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"]))
    assert run(workspace, "deliver").exit_code == 0
    [received] = smtp.received
    msg = received.message
    assert [(part.get_content_type(), part.get_filename()) for part in msg.walk()] == [
        ("multipart/mixed", None), ("multipart/alternative", None), ("text/plain", None), ("text/html", None),
        ("application/pdf", "INV-2025-000001.pdf")]
    _mixed, _alternative, text, html, pdf = msg.walk()
    assert text.get_content() == ACME_TEXT
    assert pdf.get_content_disposition() == "attachment"
    config, _host, engine = runtime(workspace)
    try:
        stored_pdf = read_document(engine, ACME, "pdf")
        stored_html = read_document(engine, ACME, "html")
    finally:
        engine.dispose()
    assert stored_pdf is not None and stored_html is not None
    assert pdf.get_payload(decode=True) == stored_pdf.content == fake_pdf(ACME)
    assert html.get_payload(decode=True) == stored_html.content  # the rendered HTML document, as stored
    assert html.get_content_charset() == "utf-8"
    listed = run_json(workspace, "documents", ACME)
    assert sorted((d["format"], d["file_name"]) for d in listed) == [
        ("html", "INV-2025-000001.html"), ("pdf", "INV-2025-000001.pdf")]


def test_attach_ubl_adds_the_ubl_xml_after_the_pdf(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"], attach_ubl=True))
    assert run(workspace, "deliver").exit_code == 0
    msg = smtp.received[0].message
    assert [(part.get_content_type(), part.get_filename()) for part in msg.iter_attachments()] == [
        ("application/pdf", "INV-2025-000001.pdf"), ("application/xml", "INV-2025-000001.xml")]
    xml = list(msg.iter_attachments())[1].get_payload(decode=True)
    assert xml == b'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice><ID>INV-2025-000001</ID></Invoice>\n'
    assert "Attached:    INV-2025-000001.pdf, INV-2025-000001.xml\n" in msg.get_body(("plain",)).get_content()


def test_a_credit_note_is_mailed_as_one_with_the_invoice_it_credits(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"]))
    noted = run(workspace, "credit-note", ACME, "--reason", "goodwill", "--issue-date", "2025-11-20")
    assert noted.exit_code == 0, noted.output
    assert run(workspace, "deliver").stdout.strip() == "deliver: 2 delivered"
    note = smtp.received[1].message
    assert note["Subject"] == "Credit note CN-2025-000001 from Hub Cloud GmbH"
    assert note["Message-ID"] == mid("CN-2025-000001", "credit_note.issued")
    assert note.get_body(("plain",)).get_content() == """\
Hello ACME GmbH,

please find attached credit note CN-2025-000001 from Hub Cloud GmbH.

Number:      CN-2025-000001
Credits:     invoice INV-2025-000001 (goodwill)
Period:      2025-10 (2025-10-01 to 2025-10-31)
Total:       13.09 EUR
Credited:    13.09 EUR
Attached:    CN-2025-000001.pdf

Hub Cloud GmbH
"""


def test_the_subject_and_body_templates_can_be_overridden(workspace, smtp, certs):
    workspace.write("config/mail.txt.j2", "Dear {{ buyer.name }}: {{ title|lower }} {{ number }}, "
                                          "{{ amount_due }} {{ currency }} by {{ due_date }} "
                                          "({{ first_day }}..{{ last_day }}).\n")
    issue(workspace, exporter(smtp, certs, subject="[{{ seller.name }}] {{ number }} \n for {{ buyer.name }}",
                              body_file="config/mail.txt.j2"))
    assert run(workspace, "deliver").exit_code == 0
    globex = smtp.received[1].message
    assert globex["Subject"] == "[Hub Cloud GmbH] INV-2025-000002 for Globex SARL"  # one line, always
    # the period in the buyer's time zone (Europe/Paris), the last day inclusive
    assert globex.get_body(("plain",)).get_content() == (
        "Dear Globex SARL: invoice INV-2025-000002, 1.20 EUR by 2025-11-17 (2025-10-01..2025-10-31).\n")


def test_a_template_that_fails_makes_the_delivery_dead_with_the_template_error(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"], subject="Invoice {{ invoice_number }}"))
    result = run(workspace, "deliver")
    assert result.exit_code == 7
    assert deliveries(workspace) == [
        (ACME, "dead", 1, None, "subject template: UndefinedError: 'invoice_number' is undefined")]
    assert smtp.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls_sends_on_the_tls_port(workspace, certs):
    server = SmtpServer(certs, implicit_tls=True)
    server.start()
    try:
        issue(workspace, exporter(server, certs, tls="ssl", accounts=["acme"]))
        assert run(workspace, "deliver").stdout.strip() == "deliver: 1 delivered"
    finally:
        server.stop()
    assert [(r.rcpt_tos, r.authenticated, r.tls) for r in server.received] == [
        (["billing@acme.example", ARCHIVE], True, True)]


# --------------------------------------------------------------------------
# Retried


def test_a_retry_after_a_temporary_refusal_sends_the_same_message_id(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"]))
    smtp.data_replies = ["451 4.3.0 Temporary lookup failure, try again later"]
    config, host, engine = runtime(workspace)
    t0 = datetime(2027, 1, 5, 12, 0, tzinfo=timezone.utc)
    key = delivery_key(ACME, "mail", "invoice.issued")
    try:
        [first] = deliver_pending(engine, config, host, now=t0)
        assert (first.outcome, first.error, first.next_attempt_at) == (
            "retry", f"127.0.0.1:{smtp.port} DATA: 451 4.3.0 Temporary lookup failure, try again later",
            t0 + backoff(key, 1))
        assert deliver_pending(engine, config, host, now=t0 + backoff(key, 1) - timedelta(seconds=1)) == []
        [second] = deliver_pending(engine, config, host, now=t0 + timedelta(hours=1))
        assert (second.outcome, second.attempt, second.external_id) == ("delivered", 2, mid(ACME))
    finally:
        engine.dispose()
    assert smtp.data_ids == [mid(ACME), mid(ACME)]  # the same message, twice offered, once taken
    assert len(smtp.received) == 1


def test_a_server_that_is_down_is_retried_then_each_invoice_is_delivered_once_it_is_up(workspace, certs):
    server = SmtpServer(certs)  # not started: connection refused
    issue(workspace, exporter(server, certs))
    config, host, engine = runtime(workspace)
    t0 = datetime(2027, 1, 5, 12, 0, tzinfo=timezone.utc)
    refused = (f"127.0.0.1:{server.port} connect: ConnectionRefusedError: "
               f"[Errno {errno.ECONNREFUSED}] {os.strerror(errno.ECONNREFUSED)}")
    try:
        attempts = deliver_pending(engine, config, host, now=t0)
        # the second delivery does not wait for the same dead server again
        assert [(a.number, a.outcome, a.error) for a in attempts] == [
            (ACME, "retry", refused),
            (GLOBEX, "retry", f"{refused} (not attempted: the same failure on another delivery of this run)")]
        pending = [(d["number"], d["status"], d["attempts"], d["next_attempt_at"]) for d in list_deliveries(engine)]
        assert pending == [
            (ACME, "pending", 1, (t0 + backoff(delivery_key(ACME, "mail", "invoice.issued"), 1)).isoformat()),
            (GLOBEX, "pending", 1, (t0 + backoff(delivery_key(GLOBEX, "mail", "invoice.issued"), 1)).isoformat())]
        server.start()
        later = deliver_pending(engine, config, host, now=t0 + timedelta(hours=1))
        assert sorted((a.number, a.outcome, a.attempt, a.external_id) for a in later) == [
            (ACME, "delivered", 2, mid(ACME)), (GLOBEX, "delivered", 2, mid(GLOBEX))]
        assert deliver_pending(engine, config, host, now=t0 + timedelta(days=1)) == []
    finally:
        engine.dispose()
        server.stop()
    assert sorted(r.message["Message-ID"] for r in server.received) == sorted([mid(ACME), mid(GLOBEX)])


def test_a_certificate_the_hub_does_not_trust_is_never_sent_to_and_is_retried(workspace, smtp, certs):
    issue(workspace, exporter(smtp, None, accounts=["acme"]))  # no ca_file: the system's CAs
    result = run(workspace, "deliver")
    assert result.exit_code == 0, result.output  # retried, not dead
    [row] = run_json(workspace, "deliveries")
    assert (row["status"], row["attempts"], row["last_error"]) == (
        "pending", 1, f"127.0.0.1:{smtp.port} STARTTLS: the server's certificate is not trusted: "
                      f"self-signed certificate (a private CA? set ca_file)")
    assert smtp.received == [] and smtp.logins == []


# --------------------------------------------------------------------------
# Refused


def _again_later(workspace) -> list:
    """One more worker run, a day later (past any backoff)."""
    from datetime import datetime, timedelta, timezone

    from hub.outbox import deliver_pending

    config, host, engine = runtime(workspace)
    try:
        return deliver_pending(engine, config, host, now=datetime.now(timezone.utc) + timedelta(days=1))
    finally:
        engine.dispose()


def test_plaintext_is_refused_by_the_server_with_530_retried_then_dead_and_starttls_gets_through(
        workspace, smtp, certs):
    # allowed: loopback
    issue(workspace, exporter(smtp, None, tls="none", username=None, password_env=None, max_attempts=2))
    result = run(workspace, "deliver")
    assert result.exit_code == 0  # retried: the operator may fix hub.toml meanwhile
    error = (f"127.0.0.1:{smtp.port} MAIL FROM: 530 Must issue a STARTTLS command first "
             f'(the server requires TLS: set tls = "starttls")')
    skipped = f"{error} (not attempted: the same failure on another delivery of this run)"
    assert deliveries(workspace) == [(ACME, "pending", 1, None, error), (GLOBEX, "pending", 1, None, skipped)]
    assert [(a.outcome, a.error) for a in _again_later(workspace)] == [
        ("dead", f"{error} (attempt 2 of 2: giving up)"), ("dead", f"{skipped} (attempt 2 of 2: giving up)")]
    assert smtp.received == [] and smtp.data_ids == []
    workspace.config(BASE + ACCOUNTS + exporter(smtp, certs))  # tls = "starttls", with login
    assert run(workspace, "deliveries", "retry", "1", "2").exit_code == 0
    assert run(workspace, "deliver").stdout.strip() == "deliver: 2 delivered"
    assert [(r.rcpt_tos[0], r.tls, r.authenticated) for r in smtp.received] == [
        ("billing@acme.example", True, True), ("compta@globex.example", True, True)]


def test_a_login_is_never_tried_in_clear_text_where_the_server_offers_auth_only_after_starttls(
        workspace, smtp, certs):
    issue(workspace, exporter(smtp, None, tls="none", accounts=["acme"]))
    assert run(workspace, "deliver").exit_code == 0
    assert deliveries(workspace) == [(ACME, "pending", 1, None, f'127.0.0.1:{smtp.port} AUTH: the server does not '
                                                                f'offer AUTH before TLS: set tls = "starttls"')]
    assert smtp.logins == []


def test_a_wrong_password_is_refused_with_535_retried_then_dead_with_the_smtp_error(
        workspace, smtp, certs, monkeypatch):
    issue(workspace, exporter(smtp, certs, max_attempts=2))
    monkeypatch.setenv(ENV, WRONG)
    result = run(workspace, "deliver")
    assert result.exit_code == 0
    error = f"127.0.0.1:{smtp.port} AUTH: 535 5.7.8 Authentication credentials invalid"
    skipped = f"{error} (not attempted: the same failure on another delivery of this run)"
    assert result.stdout.strip() == f"deliver: 2 retry ({ACME} to mail: {error}; {GLOBEX} to mail: {skipped})"
    assert deliveries(workspace) == [(ACME, "pending", 1, None, error), (GLOBEX, "pending", 1, None, skipped)]
    assert smtp.logins == [b"hub"]  # one failed login for the run, not one per invoice
    assert [a.outcome for a in _again_later(workspace)] == ["dead", "dead"]
    assert smtp.logins == [b"hub", b"hub"]
    # Which of the two the second run tries first depends on their jitter;
    # the other one is not attempted.
    dead_errors = {f"{error} (attempt 2 of 2: giving up)", f"{skipped} (attempt 2 of 2: giving up)"}
    assert [(n, status, attempts) for n, status, attempts, _id, _e in deliveries(workspace)] == [
        (ACME, "dead", 2), (GLOBEX, "dead", 2)]
    assert {e for *_rest, e in deliveries(workspace)} == dead_errors
    shown = run_json(workspace, "deliveries", "show", "1")
    assert [(a["attempt"], a["outcome"]) for a in shown["history"]] == [(1, "retry"), (2, "dead")]
    assert shown["history"][0]["error"] == error and shown["history"][1]["error"] in dead_errors
    assert smtp.received == []
    # the password fixed: queued again, they go
    monkeypatch.setenv(ENV, PASSWORD)
    assert run(workspace, "deliveries", "retry", "1", "2").exit_code == 0
    assert run(workspace, "deliver").stdout.strip() == "deliver: 2 delivered"
    assert [r.message["Message-ID"] for r in smtp.received] == [mid(ACME), mid(GLOBEX)]


def test_an_unset_password_variable_blocks_the_delivery_naming_the_variable(workspace, smtp, certs, monkeypatch):
    issue(workspace, exporter(smtp, certs, accounts=["acme"]))
    monkeypatch.delenv(ENV)
    assert run(workspace, "deliver").exit_code == 7
    assert deliveries(workspace) == [
        (ACME, "blocked", 1, None, f"exporter 'mail' could not be built: EmailConfigError: password_env: "
                                   f"environment variable {ENV} is not set")]
    assert smtp.logins == []
    monkeypatch.setenv(ENV, PASSWORD)
    assert run(workspace, "deliveries", "retry", "1").exit_code == 0
    assert run(workspace, "deliver").stdout.strip() == "deliver: 1 delivered"


def test_a_recipient_the_server_refuses_is_dead_with_the_550_and_the_others_are_delivered(workspace, smtp, certs):
    smtp.refuse = {"billing@acme.example"}
    issue(workspace, exporter(smtp, certs))
    result = run(workspace, "deliver")
    assert result.exit_code == 7
    error = (f"127.0.0.1:{smtp.port} RCPT TO: 550 5.1.1 <billing@acme.example>: Recipient address rejected: "
             f"User unknown")
    assert deliveries(workspace) == [(ACME, "dead", 1, None, error), (GLOBEX, "delivered", 1, mid(GLOBEX), None)]
    # the archive got no copy of the refused one either: the transaction stopped at its recipient
    assert [r.rcpt_tos for r in smtp.received] == [["compta@globex.example", ARCHIVE]]
    assert smtp.data_ids == [mid(GLOBEX)]


def test_a_message_over_the_servers_size_limit_is_dead_with_552(workspace, certs):
    server = SmtpServer(certs, data_size_limit=1000)
    server.start()
    try:
        issue(workspace, exporter(server, certs, accounts=["acme"]))
        assert run(workspace, "deliver").exit_code == 7
    finally:
        server.stop()
    [(number, status, attempts, external_id, error)] = deliveries(workspace)
    assert (number, status, attempts, external_id) == (ACME, "dead", 1, None)
    assert error == f"127.0.0.1:{server.port} MAIL FROM: 552 Error: message size exceeds fixed maximum message size"
    assert server.data_ids == []


def test_an_account_without_email_is_dead_naming_the_account(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["initech"]))
    assert run(workspace, "deliver").exit_code == 7
    assert deliveries(workspace) == [
        (INITECH, "dead", 1, None, "account 'initech' has no email: set email in its [[accounts]] table, "
                                   "then hub deliveries retry")]
    assert smtp.logins == []


def test_without_an_html_renderer_the_delivery_is_blocked_and_nothing_is_sent(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"]) + '\n[[renderers]]\nname = "pdf"\ntype = "pdf"\n')
    assert run(workspace, "deliver").exit_code == 7
    assert deliveries(workspace) == [(ACME, "blocked", 1, None, "no renderer makes 'html'; available: pdf")]
    assert smtp.logins == [] and smtp.data_ids == []


# --------------------------------------------------------------------------
# Configuration


def test_tls_none_to_a_host_that_is_not_loopback_is_a_configuration_error(workspace, tmp_path):
    workspace.config(BASE + ACCOUNTS + exporter(None, None, host="smtp.example.com", tls="none", port=None))
    result = run(workspace, "check")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: hub.toml: exporters[1] \"mail\": tls: 'none' is not one of: starttls, ssl",
        "hub: 1 configuration error"]
    # the factory refuses it too, saying why (for callers that build an instance without the schema)
    options = {"host": "smtp.example.com", "tls": "none", "from": SENDER}
    with pytest.raises(EmailConfigError) as refused:
        EmailExporter(InstanceConfig("mail", "email", options, tmp_path))
    assert str(refused.value) == (
        "tls = \"none\" is allowed only to a loopback host (localhost, 127.0.0.0/8, ::1), not 'smtp.example.com': "
        "the password and the invoices would cross the network in clear text; use tls = \"starttls\" or \"ssl\"")
    for loopback in ("localhost", "127.0.0.1", "127.0.0.2", "::1", "[::1]"):
        assert EmailExporter(InstanceConfig("mail", "email", {**options, "host": loopback}, tmp_path)).port == 25


def test_the_configuration_is_checked_with_the_hub_and_defaults_follow_tls(workspace, tmp_path):
    workspace.config(BASE + ACCOUNTS + exporter(None, None, host=None, port=None, username=None, password_env=None)
                     + exporter(None, None, port=None, password_env=None, tls="ssl")
                     .replace('name = "mail"', 'name = "other"'))
    result = run(workspace, "check")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        'error: hub.toml: exporters[1] "mail": host: required key is missing',
        "error: hub.toml: exporters[2] \"other\": 'password_env' is a dependency of 'username'",
        "hub: 2 configuration errors"]
    workspace.config(BASE + ACCOUNTS + exporter(None, None, host="localhost", tls="none", port=None))
    assert run(workspace, "check").exit_code == 0
    ports = {tls: EmailExporter(InstanceConfig("m", "email", {"host": "mail.example.com", "tls": tls,
                                                              "from": SENDER}, tmp_path)).port
             for tls in ("starttls", "ssl")}
    assert ports == {"starttls": 587, "ssl": 465}
    with pytest.raises(EmailConfigError, match="^from: 'billing' is not an e-mail address"):
        EmailExporter(InstanceConfig("m", "email", {"host": "mail.example.com", "from": "billing"}, tmp_path))
    with pytest.raises(EmailConfigError, match="^ca_file: cannot load "):
        EmailExporter(InstanceConfig("m", "email", {"host": "mail.example.com", "from": SENDER,
                                                    "ca_file": "missing.pem"}, tmp_path))
    with pytest.raises(EmailConfigError, match=r"^set host \(send by SMTP\) or maildir"):
        EmailExporter(InstanceConfig("m", "email", {"host": "h", "maildir": "mail", "from": SENDER}, tmp_path))
    with pytest.raises(EmailConfigError, match=r"^subject: the template does not compile: "):
        EmailExporter(InstanceConfig("m", "email", {"maildir": "m", "from": SENDER, "subject": "{{ x"}, tmp_path))
    assert EmailExporter(InstanceConfig("m", "email", {"maildir": "m", "from": SENDER}, tmp_path)).formats == (
        "html", "pdf")
    assert EmailExporter(InstanceConfig("m", "email", {"maildir": "m", "from": SENDER, "attach_ubl": True},
                                        tmp_path)).formats == ("html", "pdf", "ubl")


# --------------------------------------------------------------------------
# Maildir (the demo's mailbox)


def test_maildir_mode_files_each_delivery_once_where_a_mail_client_reads_it(workspace):
    issue(workspace, '[[exporters]]\nname = "mail"\ntype = "email"\nfrom = "billing@hub-cloud.example"\n'
                     'maildir = "mail"\naccounts = ["acme", "globex"]\n')
    assert run(workspace, "deliver").stdout.strip() == "deliver: 2 delivered"
    folder = workspace.root / "mail"
    box = mailbox.Maildir(str(folder), create=False)
    assert sorted(m["Message-ID"] for m in box) == sorted([mid(ACME), mid(GLOBEX)])
    key = delivery_key(ACME, "mail", "invoice.issued")
    assert sorted(p.name for p in (folder / "new").iterdir()) == sorted(
        [key, delivery_key(GLOBEX, "mail", "invoice.issued")])
    assert list((folder / "tmp").iterdir()) == []
    filed = email.message_from_bytes((folder / "new" / key).read_bytes(), policy=email.policy.default)
    assert [p.get_content_type() for p in filed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    assert list(filed.iter_attachments())[0].get_payload(decode=True) == fake_pdf(ACME)
    # a retry after a crash (the same key) files nothing new, even once the message was read
    config, host, engine = runtime(workspace)
    engine.dispose()
    [ic] = config.exporters
    mailer = EmailExporter(ic)
    documents = {"html": Document("a.html", "text/html; charset=utf-8", b"<p>a</p>"),
                 "pdf": Document("a.pdf", "application/pdf", b"%PDF")}
    invoice = run_json(workspace, "invoices", "show", ACME)
    again = Delivery(key=key, event="invoice.issued", invoice=invoice, documents=documents, attempt=2,
                     recipient="billing@acme.example")
    assert mailer.deliver(again) == mid(ACME)
    (folder / "new" / key).rename(folder / "cur" / f"{key}:2,S")
    assert mailer.deliver(again) == mid(ACME)
    assert len(list(mailbox.Maildir(str(folder), create=False))) == 2


# --------------------------------------------------------------------------
# Reminders (invoice.overdue)

DUNNING = "\n[dunning]\nafter_days = [7, 14]\n"

ACME_REMINDER = """\
Hello ACME GmbH,

this is a reminder: invoice INV-2025-000001 from Hub Cloud GmbH
was due on 2025-11-17 and is 16 days overdue.
Its open balance is 3.09 EUR.

Number:        INV-2025-000001
Issue date:    2025-11-03
Due date:      2025-11-17
Days overdue:  16 (reminder after 14 days)
Total:         13.09 EUR
Open balance:  3.09 EUR
Attached:      INV-2025-000001.pdf

Please pay the open balance now. If you have paid it in the last few
days, please disregard this reminder.

Hub Cloud GmbH
"""


def test_an_overdue_invoice_gets_a_reminder_by_mail_with_its_open_balance_and_its_pdf_attached(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs) + DUNNING)
    assert run(workspace, "deliver").stdout.strip() == "deliver: 2 delivered"
    for number, amount in ((ACME, "10.00"), (GLOBEX, "1.20")):
        paid = run(workspace, "invoices", "pay", number, "--amount", amount, "--date", "2025-11-20")
        assert paid.exit_code == 0, paid.output
    # 16 days past due: step 14 (7 is passed over); globex is paid: none; initech is not mailed (no exporter)
    reminded = run_json(workspace, "dunning", "--as-of", "2025-12-03")
    assert [(r["number"], r["step"], r["days_overdue"], r["open_balance"], r["deliveries"], r["passed"])
            for r in reminded] == [(ACME, 14, 16, "3.09", 1, [7]), (INITECH, 14, 16, "2.00", 0, [7])]
    result = run(workspace, "deliver")
    assert result.stdout.strip() == "deliver: 1 delivered", result.output
    assert [(m.mail_from, m.rcpt_tos) for m in smtp.received[2:]] == [(SENDER, ["billing@acme.example", ARCHIVE])]
    msg = smtp.received[2].message
    key = delivery_key(ACME, "mail", "invoice.overdue", "overdue:14")
    assert (msg["From"], msg["To"], msg["Subject"], msg["Message-ID"], msg["Auto-Submitted"]) == (
        "Hub Cloud Billing <billing@hub-cloud.example>", "ACME GmbH <billing@acme.example>",
        "Reminder: invoice INV-2025-000001 is 16 days overdue", f"<{key}@hub-cloud.example>",
        "auto-generated")
    # the reminder's text and the invoice's PDF: no HTML part (the invoice's HTML would hide the reminder)
    assert [(part.get_content_type(), part.get_filename()) for part in msg.walk()] == [
        ("multipart/mixed", None), ("text/plain", None), ("application/pdf", "INV-2025-000001.pdf")]
    _mixed, text, pdf = msg.walk()
    assert text.get_content() == ACME_REMINDER
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_payload(decode=True) == fake_pdf(ACME)
    assert [(d["number"], d["event"], d["occasion"], d["status"], d["external_id"])
            for d in run_json(workspace, "deliveries")][2:] == [
        (ACME, "invoice.overdue", "overdue:14", "delivered", f"<{key}@hub-cloud.example>")]
    # once per step: the next run of the same day, or the next day, sends nothing
    assert run_json(workspace, "dunning", "--as-of", "2025-12-04") == []
    assert run(workspace, "deliver").stdout.strip() == "deliver: nothing due"
    assert len(smtp.received) == 3


def test_the_reminder_subject_and_text_templates_can_be_overridden(workspace, smtp, certs):
    issue(workspace, exporter(smtp, certs, accounts=["acme"], attach_ubl=True,
                              reminder_subject="Zahlungserinnerung {{ number }} (Stufe {{ reminder.step }})",
                              reminder_body="{{ reminder.open_balance }} {{ currency }} offen seit "
                                            "{{ reminder.due_date }}; {{ attachments|join(', ') }}\n") + DUNNING)
    assert run(workspace, "deliver").exit_code == 0
    assert [(r["number"], r["step"], r["deliveries"]) for r in run_json(workspace, "dunning", "--as-of", "2025-11-24")] \
        == [(ACME, 7, 1), (GLOBEX, 7, 0), (INITECH, 7, 0)]
    assert run(workspace, "deliver").stdout.strip() == "deliver: 1 delivered"
    msg = smtp.received[1].message
    assert msg["Subject"] == "Zahlungserinnerung INV-2025-000001 (Stufe 7)"
    assert msg.get_body(("plain",)).get_content() == \
        "13.09 EUR offen seit 2025-11-17; INV-2025-000001.pdf, INV-2025-000001.xml\n"
    assert [part.get_filename() for part in msg.iter_attachments()] == ["INV-2025-000001.pdf", "INV-2025-000001.xml"]
