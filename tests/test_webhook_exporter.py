"""The CRM webhook exporter, against a real receiver: a
``ThreadingHTTPServer`` on 127.0.0.1 that verifies every request with the
reference ``standardwebhooks`` package (PyPI), deduplicates on
``webhook-id`` and answers as each test scripts it. The exporter's signing
code is our own; the verifier is not.

End to end through ``hub deliver`` on SQLite and PostgreSQL: a valid event
accepted; tampered, re-serialised, stale and unsigned requests rejected; a
receiver failing (500, 429 with Retry-After, a timeout) then recovering gets
the event exactly once; redirects are not followed; 410 disables; plain
http and private addresses are refused; ``invoice.paid`` follows a full
payment; and a worker SIGKILLed between sending and recording is replaced
after its lease without a second logical delivery."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib.metadata as md
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select, update
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

import hub_plugins.exporters.webhook as webhook
from hub.config import load_config
from hub.hookspecs import ENTRY_POINT_GROUP
from hub.host import Host, build_host
from hub.outbox import LEASE, backoff, deliver_pending, delivery_key
from hub.plugin_types import Delivery, DeliveryError, InstanceConfig
from hub.store.db import open_store
from hub.store.tables import deliveries, delivery_attempts
from hub_plugins.exporters.webhook import WebhookExporter, retry_after_seconds, sign, signing_key
from tests.test_invoices import ACCOUNTS, BASE, OCTOBER
from tests.test_render_host import FAKES as FAKE_RENDERERS

ROOT = Path(__file__).resolve().parent.parent
SECRET_ENV = "CRM_WEBHOOK_SECRET"
SECRET = "whsec_" + base64.b64encode(b"a 32-byte key the CRM handed us!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody else's key, 32 bytes..").decode()
ACME, GLOBEX = "INV-2025-000001", "INV-2025-000002"


def webhook_host() -> Host:
    """The CSV source, the webhook exporter (through its entry point once
    pyproject.toml declares it, else registered here the same way) and the
    small test renderers of tests/test_render_host.py."""
    eps = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name in ("csv", "webhook")]
    extra: list[tuple[str, object]] = [("fake_renderers", FAKE_RENDERERS)]
    if not any(ep.name == "webhook" for ep in eps):
        extra.append(("webhook", webhook))
    return build_host(eps, extra_plugins=extra)


@pytest.fixture(autouse=True)
def _host_and_secret(monkeypatch):
    import hub.cli.base

    monkeypatch.setattr(hub.cli.base, "build_host", webhook_host)  # where the CLI's workspace builds its host
    monkeypatch.setenv(SECRET_ENV, SECRET)


# --------------------------------------------------------------------------
# The receiver


@dataclasses.dataclass(frozen=True)
class Answer:
    """A scripted answer, given without acting on the event."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Seen:
    """One request as the receiver got it, and what it did with it:
    ``processed`` (acted on), ``duplicate`` (already acted on: ignored),
    ``scripted`` (failed on purpose) or ``rejected: <the verifier's words>``."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    verdict: str


class Receiver:
    """A CRM endpoint. Its script says what the next requests get: ``"ok"``
    (the default), ``("id", X)`` (ok, answering 200 with its own id X),
    ``"stall"`` (acts on the event, then answers only after the sender gave
    up), ``"hold"`` (acts on it, signals :attr:`held`, answers once
    :attr:`release` is set) or an :class:`Answer`. Every request is first
    verified; a request that fails verification gets 401 whatever the
    script says, and does not use up a step."""

    def __init__(self, secret: str) -> None:
        self.verifier = Webhook(secret)
        self.script: list[Any] = []
        self.seen: list[Seen] = []
        self.processed: list[str] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self.unstall = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/hooks/billing") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.unstall.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        r: Receiver = self.server.receiver  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}

        def seen(status: int, verdict: str) -> None:
            with r.lock:
                r.seen.append(Seen(self.path, headers, body, status, verdict))

        try:
            r.verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            seen(401, f"rejected: {exc}")
            return self._answer(401, str(exc).encode())
        with r.lock:
            step = r.script.pop(0) if r.script else "ok"
        if isinstance(step, Answer):
            seen(step.status, "scripted")
            return self._answer(step.status, step.body, dict(step.headers))
        with r.lock:  # act on the event once per webhook-id
            duplicate = headers["webhook-id"] in r.processed
            if not duplicate:
                r.processed.append(headers["webhook-id"])
        if duplicate:
            seen(200, "duplicate")
            return self._answer(200, b'{"duplicate":true}')
        if isinstance(step, tuple) and step[0] == "id":
            seen(200, "processed")
            return self._answer(200, json.dumps({"id": step[1]}).encode())
        seen(204, "processed")
        if step == "stall":
            r.unstall.wait(5)
        elif step == "hold":
            r.held.set()
            r.release.wait(60)
        self._answer(204, b"")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)
        except OSError:  # the sender gave up (timed out, or was killed)
            pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


# --------------------------------------------------------------------------
# Helpers


def _exporter(url: str, accounts: tuple[str, ...] = ("acme",), timeout: float = 2, extra: str = "") -> str:
    listed = ", ".join(f'"{a}"' for a in accounts)
    return (f'[[exporters]]\nname = "crm"\ntype = "webhook"\nurl = "{url}"\nsecret_env = "{SECRET_ENV}"\n'
            f"timeout = {timeout}\naccounts = [{listed}]\n{extra}")


def _issue(workspace, exporters: str) -> None:
    workspace.config(BASE + ACCOUNTS + exporters)
    workspace.write("usage/2025-10.csv", OCTOBER, dedent=False)
    assert workspace.hub("pull").exit_code == 0
    issued = workspace.hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    assert issued.exit_code == 0, issued.output


def _runtime(workspace):
    host = webhook_host()
    config = load_config(workspace.config_path, host)
    return config, host, open_store(config.hub.database, config.base_dir)


def _event_timestamp(workspace, delivery_id: int, fallback_day: str) -> str:
    """The event's ``timestamp``: the delivery's creation once the host hands
    it to exporters (``Delivery.created_at``), else the fallback day."""
    if "created_at" not in {f.name for f in dataclasses.fields(Delivery)}:
        return f"{fallback_day}T00:00:00Z"
    engine = open_store(workspace.db_url, workspace.root)
    with engine.connect() as conn:
        created = conn.scalar(select(deliveries.c.created_at).where(deliveries.c.id == delivery_id))
    engine.dispose()
    return webhook._utc_text(created)


def _instance(url: str, **options: Any) -> InstanceConfig:
    return InstanceConfig(name="crm", type="webhook", base_dir=ROOT,
                          options={"url": url, "secret_env": SECRET_ENV, "timeout": 2, **options})


def _delivery(event: str = "invoice.issued", key: str = "msg_unit") -> Delivery:
    invoice = {"number": "INV-T-1", "issue_date": "2025-11-03", "total": "1.00", "payments": []}
    return Delivery(key=key, event=event, invoice=invoice, documents={}, attempt=1)


# --------------------------------------------------------------------------
# Delivered, signed, verified


def test_an_issued_invoice_is_posted_signed_and_the_reference_verifier_accepts_it(workspace, receiver):
    _issue(workspace, _exporter(receiver.url()))
    before = int(time.time())
    result = workspace.hub("deliver")
    after = int(time.time())
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "deliver: 1 delivered"
    key = delivery_key(ACME, "crm", "invoice.issued")
    [seen] = receiver.seen
    assert (seen.path, seen.status, seen.verdict) == ("/hooks/billing", 204, "processed")
    assert seen.headers["webhook-id"] == key
    assert before <= int(seen.headers["webhook-timestamp"]) <= after
    assert seen.headers["webhook-signature"] == sign(signing_key(SECRET), key, int(seen.headers["webhook-timestamp"]),
                                                     seen.body)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"].startswith("billing-hub/")
    invoice = workspace.json("invoices", "show", ACME)
    assert json.loads(seen.body) == {"type": "invoice.issued",
                                     "timestamp": _event_timestamp(workspace, 1, "2025-11-03"),
                                     "data": {**invoice, "documents": []}}
    assert receiver.processed == [key]
    [row] = workspace.json("deliveries")
    assert (row["status"], row["attempts"], row["external_id"], row["last_error"]) == ("delivered", 1, key, None)


def test_the_receiver_rejects_tampered_reserialised_stale_future_unsigned_and_foreign_requests(workspace, receiver):
    _issue(workspace, _exporter(receiver.url()))
    assert workspace.hub("deliver").exit_code == 0
    [genuine] = receiver.seen
    msg_id = genuine.headers["webhook-id"]
    key = signing_key(SECRET)
    headers = {k: genuine.headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")}

    def post(body: bytes, **changed: str) -> tuple[int, str]:
        answer = requests.post(receiver.url(), data=body, headers={**headers, **changed}, timeout=5)
        return answer.status_code, answer.text

    def signed(ts: int, body: bytes = genuine.body, secret: bytes = key) -> dict[str, str]:
        return {"webhook-timestamp": str(ts), "webhook-signature": sign(secret, msg_id, ts, body)}

    tampered = genuine.body.replace(b'"total":"13.09"', b'"total":"1.09"')
    assert tampered != genuine.body
    assert post(tampered) == (401, "No matching signature found")
    reserialised = json.dumps(json.loads(genuine.body), indent=1).encode()  # the same JSON, other bytes
    assert post(reserialised) == (401, "No matching signature found")
    now = int(time.time())
    assert post(genuine.body, **signed(now - 600)) == (401, "Message timestamp too old")
    assert post(genuine.body, **signed(now + 600)) == (401, "Message timestamp too new")
    assert post(genuine.body, **signed(now, secret=signing_key(OTHER_SECRET))) == (401, "No matching signature found")
    assert requests.post(receiver.url(), data=genuine.body, headers={"content-type": "application/json"},
                         timeout=5).text == "Missing required headers"
    # a key rotation: an old signature beside the valid one is accepted
    rotated = f"v1,{base64.b64encode(b'x' * 32).decode()} {sign(key, 'msg_rotation', now, genuine.body)}"
    assert post(genuine.body, **{"webhook-id": "msg_rotation", "webhook-timestamp": str(now),
                                 "webhook-signature": rotated}) == (204, "")
    # the genuine request again: verified, recognised by its id, not acted on twice
    assert post(genuine.body) == (200, '{"duplicate":true}')
    assert receiver.processed == [msg_id, "msg_rotation"]


# --------------------------------------------------------------------------
# Failures and retries


def test_a_receiver_failing_with_500_then_429_then_timing_out_then_recovering_gets_the_event_exactly_once(
        workspace, receiver):
    _issue(workspace, _exporter(receiver.url(), timeout=1))
    receiver.script = [Answer(500, b"the database is down"), Answer(429, b"slow down", (("Retry-After", "120"),)),
                       "stall", "ok"]
    key = delivery_key(ACME, "crm", "invoice.issued")
    config, host, engine = _runtime(workspace)
    try:
        t0 = datetime(2027, 1, 5, 12, 0, tzinfo=timezone.utc)
        [first] = deliver_pending(engine, config, host, now=t0)
        assert (first.outcome, first.error, first.next_attempt_at) == (
            "retry", "HTTP 500 Internal Server Error: the database is down", t0 + backoff(key, 1))
        t1 = first.next_attempt_at
        [second] = deliver_pending(engine, config, host, now=t1)
        assert backoff(key, 2) < timedelta(seconds=120)  # so the wait below is the receiver's
        assert (second.outcome, second.error, second.next_attempt_at) == (
            "retry", "HTTP 429 Too Many Requests: slow down (Retry-After 120 s)", t1 + timedelta(seconds=120))
        assert deliver_pending(engine, config, host, now=t1 + timedelta(seconds=119)) == []
        [third] = deliver_pending(engine, config, host, now=t1 + timedelta(seconds=120))
        assert (third.outcome, third.error) == ("retry", "no answer within 1 s: timed out")
        [fourth] = deliver_pending(engine, config, host, now=third.next_attempt_at)
        assert (fourth.outcome, fourth.attempt, fourth.external_id) == ("delivered", 4, key)
        assert deliver_pending(engine, config, host, now=third.next_attempt_at + timedelta(days=1)) == []
    finally:
        engine.dispose()
    # one logical delivery: the same id every time, acted on once (during the
    # attempt whose answer was lost), the last attempt recognised as a duplicate
    assert [(s.headers["webhook-id"], s.status, s.verdict) for s in receiver.seen] == [
        (key, 500, "scripted"), (key, 429, "scripted"), (key, 204, "processed"), (key, 200, "duplicate")]
    assert receiver.processed == [key]
    assert len({s.body for s in receiver.seen}) == 1
    shown = workspace.json("deliveries", "show", "1")
    assert (shown["status"], shown["external_id"], shown["last_error"]) == ("delivered", key, None)
    assert [(a["attempt"], a["outcome"], a["error"]) for a in shown["history"]] == [
        (1, "retry", "HTTP 500 Internal Server Error: the database is down"),
        (2, "retry", "HTTP 429 Too Many Requests: slow down (Retry-After 120 s)"),
        (3, "retry", "no answer within 1 s: timed out"),
        (4, "delivered", None)]


@pytest.mark.parametrize(("status", "phrase", "outcome", "exit_code"), [
    (307, "Temporary Redirect", "retry", 0),
    (301, "Moved Permanently", "dead", 7),
])
def test_a_redirect_is_not_followed_and_counts_as_a_failure(workspace, receiver, status, phrase, outcome, exit_code):
    _issue(workspace, _exporter(receiver.url()))
    elsewhere = receiver.url("/elsewhere")
    receiver.script = [Answer(status, headers=(("Location", elsewhere),))]
    result = workspace.hub("deliver", "--json")
    assert result.exit_code == exit_code, result.output
    [attempt] = json.loads(result.stdout)
    assert (attempt["outcome"], attempt["error"]) == (outcome, f"HTTP {status} {phrase}: redirect to {elsewhere} not "
                                                               f"followed (webhooks never follow redirects; point url "
                                                               f"at the final address)")
    assert [(s.path, s.status) for s in receiver.seen] == [("/hooks/billing", status)]
    assert receiver.processed == []


def test_a_410_kills_the_delivery_saying_the_endpoint_asked_to_be_disabled_and_nothing_more_is_sent_that_run(
        workspace, receiver):
    _issue(workspace, _exporter(receiver.url(), accounts=("acme", "globex")))
    receiver.script = [Answer(410, b"endpoint removed")]
    result = workspace.hub("deliver")
    assert result.exit_code == 7, result.output
    assert [s.status for s in receiver.seen] == [410]
    dead = workspace.json("deliveries", "--status", "dead")
    assert [(d["number"], d["attempts"], d["last_error"]) for d in dead] == [
        (ACME, 1, "the target asked to stop (disabled): HTTP 410 Gone: endpoint removed: the endpoint asked to be "
                  "disabled; no more events are sent to it in this run (fix or remove exporter 'crm', then hub "
                  "deliveries retry)"),
        (GLOBEX, 1, "the target asked to stop (disabled): HTTP 410 Gone earlier in this run: the endpoint asked to "
                    "be disabled; not sent (fix or remove exporter 'crm', then hub deliveries retry)")]
    # the endpoint is back: a later run sends what the operator queues again
    assert workspace.hub("deliveries", "retry", str(dead[1]["id"])).exit_code == 0
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    assert receiver.processed == [delivery_key(GLOBEX, "crm", "invoice.issued")]


# --------------------------------------------------------------------------
# Where it may send


def test_plain_http_to_a_host_that_is_not_loopback_is_refused_by_hub_check_and_by_the_factory(workspace):
    workspace.config(BASE + ACCOUNTS + _exporter("http://crm.example.com/hooks"))
    checked = workspace.hub("check")
    assert checked.exit_code == 2
    assert ('exporters[1] "crm": url: \'http://crm.example.com/hooks\': plain http is refused except to a loopback '
            'host (localhost, 127.0.0.0/8, [::1]): use https://crm.example.com') in " ".join(checked.output.split())
    with pytest.raises(ValueError) as refused:
        WebhookExporter(_instance("http://crm.example.com/hooks"))
    assert str(refused.value) == ("url: plain http is refused except to a loopback host (localhost, 127.0.0.0/8, "
                                  "[::1]): use https://crm.example.com")
    for loopback in ("http://127.0.0.1:8080/hooks", "http://localhost/hooks", "http://[::1]:9/hooks"):
        assert WebhookExporter(_instance(loopback)).url == loopback


def test_private_and_link_local_addresses_are_refused_unless_allowed():
    for url, kind in (("https://10.0.0.7/hooks", "private"), ("https://169.254.169.254/latest", "link-local"),
                      ("https://[fd00::1]/hooks", "private"), ("https://100.64.0.1/hooks", "non-public")):
        with pytest.raises(ValueError) as refused:
            WebhookExporter(_instance(url))
        host = url.split("/")[2].strip("[]")
        assert str(refused.value) == (f"url: {host} is a {kind} address: refused against server-side request "
                                      f"forgery (set allow_private = true for a receiver inside your network)")
        assert WebhookExporter(_instance(url, allow_private=True)).url == url


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(monkeypatch):
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host == "crm.internal.example":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(DeliveryError) as refused:
        WebhookExporter(_instance("https://crm.internal.example/hooks")).deliver(_delivery())
    assert (str(refused.value), refused.value.permanent) == (
        "crm.internal.example resolves to 10.20.30.40, a private address: refused against server-side request "
        "forgery (set allow_private = true for a receiver inside your network)", True)
    assert asked == ["crm.internal.example"]  # resolved once, by the check; never connected


def test_a_name_that_passed_the_check_and_resolves_to_loopback_when_sent_is_refused_before_a_byte_is_sent(
        monkeypatch, receiver):
    """DNS rebinding: the URL passed hub check and the factory (a public name);
    at send time it resolves to loopback. (That the connection goes to the
    very address checked, resolved once: tests/test_outbound_guard.py.)"""
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(DeliveryError) as refused:
        WebhookExporter(_instance(f"https://rebind.example:{receiver.port}/hooks")).deliver(_delivery())
    assert (str(refused.value), refused.value.permanent) == (
        "rebind.example resolves to 127.0.0.1, a loopback address: refused against server-side request forgery "
        "(set allow_private = true for a receiver inside your network)", True)
    time.sleep(0.2)
    assert receiver.seen == []


# --------------------------------------------------------------------------
# Other events, documents, the answer's details


def test_paying_an_invoice_in_full_delivers_invoice_paid_under_its_own_webhook_id(workspace, receiver):
    _issue(workspace, _exporter(receiver.url()))
    assert workspace.hub("deliver").exit_code == 0
    due = workspace.json("invoices", "show", ACME)["amount_due"]
    paid = workspace.hub("invoices", "pay", ACME, "--amount", due, "--date", "2025-11-20", "--reference", "SEPA-1")
    assert paid.exit_code == 0, paid.output
    receiver.script = [("id", "crm-evt-77")]
    result = workspace.hub("deliver")
    assert result.stdout.strip() == "deliver: 1 delivered", result.output
    issued_key, paid_key = (delivery_key(ACME, "crm", e) for e in ("invoice.issued", "invoice.paid"))
    event = json.loads(receiver.seen[1].body)
    assert (receiver.seen[1].headers["webhook-id"], event["type"], event["data"]["status"], event["data"]["payments"]) \
        == (paid_key, "invoice.paid", "paid", [{"amount": due, "date": "2025-11-20", "reference": "SEPA-1"}])
    assert event["timestamp"] == _event_timestamp(workspace, 2, "2025-11-20")
    assert receiver.processed == [issued_key, paid_key]
    assert [(d["event"], d["status"], d["external_id"]) for d in workspace.json("deliveries", "--invoice", ACME)] == [
        ("invoice.issued", "delivered", issued_key), ("invoice.paid", "delivered", "crm-evt-77")]


def test_the_event_lists_the_configured_documents_with_their_digest_and_link(workspace, receiver):
    _issue(workspace, '[[renderers]]\nname = "text"\ntype = "txt"\n\n' + _exporter(
        receiver.url(), extra='documents = ["txt"]\ndocuments_base_url = "https://files.example.com/invoices/"\n'))
    assert workspace.hub("deliver").exit_code == 0
    invoice = workspace.json("invoices", "show", ACME)
    text = f"INVOICE {ACME} {invoice['buyer']['name']} {invoice['total']} {invoice['currency']}\n".encode()
    assert json.loads(receiver.seen[0].body)["data"]["documents"] == [
        {"format": "txt", "file_name": f"{ACME}.txt", "media_type": "text/plain; charset=utf-8",
         "sha256": hashlib.sha256(text).hexdigest(), "url": f"https://files.example.com/invoices/{ACME}.txt"}]


def test_the_receivers_own_id_becomes_the_external_id_and_a_closed_port_is_a_transient_failure(receiver):
    exporter = WebhookExporter(_instance(receiver.url()))
    receiver.script = [("id", "crm-123"), "ok"]
    assert exporter.deliver(_delivery(key="msg_a")) == "crm-123"
    assert exporter.deliver(_delivery(key="msg_b")) == "msg_b"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(DeliveryError) as failed:
        WebhookExporter(_instance(f"http://127.0.0.1:{closed}/hooks")).deliver(_delivery())
    assert (str(failed.value), failed.value.permanent, failed.value.retry_after) == (
        "could not connect: Connection refused", False, None)


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Mon, 30 Nov 2026 12:05:00 GMT", now) == 300
    assert retry_after_seconds("Mon, 30 Nov 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_a_bad_or_missing_secret_is_refused_without_showing_it(monkeypatch):
    for value, why in (("c2VjcmV0LXdpdGhvdXQtcHJlZml4", "the secret does not start with 'whsec_' (Standard "
                                                        "Webhooks secrets do)"),
                       ("whsec_not base64!", "the part of the secret after 'whsec_' is not base64"),
                       ("whsec_", "the secret is empty")):
        monkeypatch.setenv(SECRET_ENV, value)
        with pytest.raises(ValueError) as refused:
            WebhookExporter(_instance("https://crm.example.com/hooks"))
        assert str(refused.value) == f"secret_env: {SECRET_ENV}: {why}"
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(ValueError) as missing:
        WebhookExporter(_instance("https://crm.example.com/hooks"))
    assert str(missing.value) == f"secret_env: environment variable {SECRET_ENV} is not set"
    monkeypatch.setenv(SECRET_ENV, SECRET)
    exporter = WebhookExporter(_instance("https://crm.example.com/hooks"))
    assert repr(exporter) == "WebhookExporter(name='crm', url='https://crm.example.com/hooks')"
    assert signing_key(SECRET) == b"a 32-byte key the CRM handed us!"


# --------------------------------------------------------------------------
# A worker killed between sending and recording


#: ``hub`` in a child process, with the CSV source and the webhook exporter
#: (:func:`webhook_host` without the test renderers, to start faster)
HUB = ("import importlib.metadata as md, hub.cli.main as m, hub_plugins.exporters.webhook as w\n"
       "from hub.hookspecs import ENTRY_POINT_GROUP\nfrom hub.host import build_host\n"
       "eps = [e for e in md.entry_points(group=ENTRY_POINT_GROUP) if e.name in ('csv', 'webhook')]\n"
       "extra = [] if any(e.name == 'webhook' for e in eps) else [('webhook', w)]\n"
       "m.build_host = lambda: build_host(eps, extra_plugins=extra)\nm.main()")


def test_a_worker_killed_between_sending_and_recording_is_replaced_after_its_lease_and_the_receiver_sees_one_delivery(
        workspace, receiver):
    _issue(workspace, _exporter(receiver.url()))
    key = delivery_key(ACME, "crm", "invoice.issued")
    command = [sys.executable, "-c", HUB, "--config", str(workspace.config_path), "deliver"]
    env = {**os.environ, SECRET_ENV: SECRET}
    receiver.script = ["hold"]  # acts on the event, then holds the answer
    worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if not receiver.held.wait(60):
            worker.kill()
            pytest.fail(f"the worker never sent the event: {worker.communicate()[1].decode()[-3000:]}")
        os.kill(worker.pid, signal.SIGKILL)  # it sent the event and waits for the answer: nothing recorded yet
        assert worker.wait(30) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        receiver.release.set()
    [row] = workspace.json("deliveries")
    assert (row["status"], row["attempts"], row["external_id"]) == ("sending", 1, None)
    engine = open_store(workspace.db_url, workspace.root)
    try:
        with engine.connect() as conn:
            lease_until = conn.scalar(select(deliveries.c.lease_until).where(deliveries.c.id == row["id"]))
            started = conn.scalar(select(delivery_attempts.c.started_at)
                                  .where(delivery_attempts.c.delivery_id == row["id"]))
        assert lease_until - started == LEASE
        # while the dead worker's lease holds, nobody sends it again
        assert workspace.hub("deliver").stdout.strip() == "deliver: nothing due"
        # the lease runs out: hub deliver has no --now, so time passing is
        # simulated by moving the lease's end into the past
        with engine.begin() as conn:
            conn.execute(update(deliveries).where(deliveries.c.id == row["id"])
                         .values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
    finally:
        engine.dispose()
    restarted = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.strip() == "deliver: 1 delivered"
    assert [(s.headers["webhook-id"], s.status, s.verdict) for s in receiver.seen] == [
        (key, 204, "processed"), (key, 200, "duplicate")]
    assert receiver.processed == [key]
    shown = workspace.json("deliveries", "show", str(row["id"]))
    assert (shown["status"], shown["external_id"]) == ("delivered", key)
    assert [(a["attempt"], a["outcome"], a["finished_at"] is None) for a in shown["history"]] == [
        (1, None, True), (2, "delivered", False)]
    assert workspace.hub("deliver").stdout.strip() == "deliver: nothing due"


def test_an_overdue_invoice_is_posted_as_invoice_overdue_with_its_reminder_under_a_webhook_id_per_step(
        workspace, receiver):
    _issue(workspace, _exporter(receiver.url()) + "\n[dunning]\nafter_days = [7, 14]\n")
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    paid = workspace.hub("invoices", "pay", ACME, "--amount", "3.00", "--date", "2025-11-20")
    assert paid.exit_code == 0, paid.output
    reminded = workspace.json("dunning", "--as-of", "2025-11-25")
    assert [(r["number"], r["step"], r["deliveries"]) for r in reminded if r["deliveries"]] == [(ACME, 7, 1)]
    result = workspace.hub("deliver")
    assert result.stdout.strip() == "deliver: 1 delivered", result.output
    key = delivery_key(ACME, "crm", "invoice.overdue", "overdue:7")
    seen = receiver.seen[1]
    assert (seen.status, seen.verdict, seen.headers["webhook-id"]) == (204, "processed", key)
    invoice = workspace.json("invoices", "show", ACME)
    assert invoice["open_balance"] == "10.09"
    [row] = [d for d in workspace.json("deliveries") if d["event"] == "invoice.overdue"]
    assert json.loads(seen.body) == {
        "type": "invoice.overdue", "timestamp": _event_timestamp(workspace, row["id"], "2025-11-03"),
        "data": {**invoice, "documents": [],
                 "reminder": {"step": 7, "as_of": "2025-11-25", "due_date": "2025-11-17", "days_overdue": 8,
                              "open_balance": "10.09", "currency": "EUR"}}}
    # step 14: another event, under its own webhook id
    assert [r["step"] for r in workspace.json("dunning", "--as-of", "2025-12-01") if r["number"] == ACME] == [14]
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    assert receiver.processed == [delivery_key(ACME, "crm", "invoice.issued"), key,
                                  delivery_key(ACME, "crm", "invoice.overdue", "overdue:14")]
    assert json.loads(receiver.seen[2].body)["data"]["reminder"]["step"] == 14


def test_a_resend_posts_the_issued_event_again_under_a_webhook_id_of_its_own(workspace, receiver):
    _issue(workspace, _exporter(receiver.url()))
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    [queued] = workspace.json("deliveries", "resend", ACME)
    assert queued["occasion"] == "resend:1"
    assert workspace.hub("deliver").stdout.strip() == "deliver: 1 delivered"
    first, again = (json.loads(s.body) for s in receiver.seen)
    assert receiver.processed == [delivery_key(ACME, "crm", "invoice.issued"),
                                  delivery_key(ACME, "crm", "invoice.issued", "resend:1")]
    assert (again["type"], again["data"]) == ("invoice.issued", first["data"])
