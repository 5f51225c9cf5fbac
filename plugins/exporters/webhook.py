"""The CRM webhook exporter (type ``webhook``): invoice events POSTed as
JSON and signed per the Standard Webhooks specification.

```toml
[[exporters]]
name = "crm"
type = "webhook"
url = "https://crm.example.com/hooks/billing"
secret_env = "CRM_WEBHOOK_SECRET"   # whsec_ + base64 of the key, as the receiver gave it
events = ["invoice.issued", "invoice.paid"]   # the hub's key; default: all four events
timeout = 15                        # seconds, to connect and for each read
documents = ["pdf"]                 # documents listed in the event (rendered first); default none
documents_base_url = "https://files.example.com/invoices"   # where the receiver can fetch them
allow_private = false               # true: the receiver may be on a private network
ca_file = "certs/crm-ca.pem"        # a private CA, relative to hub.toml (default: the system's)
```

One call of :meth:`WebhookExporter.deliver` makes one attempt; the hub's
outbox owns retries, backoff, ``max_attempts`` and the dead state.

**The request.** ``POST url`` with the body serialised once to bytes and
those exact bytes signed: ``{"type": <event>, "timestamp": <when the event
happened>, "data": {<the invoice, as hub invoices show --json prints it>,
"documents": [{format, file_name, media_type, sha256, url?}]}}``. Headers:
``webhook-id`` (the delivery's idempotency key, the same on every attempt,
after a crash too: receivers deduplicate on it), ``webhook-timestamp``
(this attempt's Unix seconds), ``webhook-signature`` (``v1,`` + base64
HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``, keyed with the base64-decoded
part of the ``whsec_`` secret), ``Content-Type: application/json`` and a
``User-Agent`` naming the hub. The event's ``timestamp`` does not change
between attempts (the receiver's signature check uses the header, not it):
it is the delivery's creation (the issuing or paying transaction) when the
host provides it, else the invoice's issue date (``invoice.paid``: the date
of its last payment) at midnight UTC. ``data`` is the invoice as of the
attempt (its ``status`` and ``payments`` may have moved on since the event).

A reminder (``invoice.overdue``, once per ``[dunning] after_days`` step)
has the same shape, and ``data.reminder``: ``{"step": 14, "as_of":
"2025-12-01", "due_date": "2025-11-17", "days_overdue": 14, "open_balance":
"13.09", "currency": "EUR"}`` (``as_of`` the day it was due on; the open
balance as of the attempt). A resend (``hub deliveries resend``) is the
issued event again under a webhook id of its own.

**The answer.** 2xx: delivered; the external id is the receiver's ``id``
from a JSON body, else the webhook id. 3xx: a failure, never followed (301
and 308 are permanent: point ``url`` at the new address; others are
retried). 408, 429 and 5xx, timeouts and connection errors: transient,
honouring ``Retry-After`` (seconds or an HTTP date). 410: the endpoint asked
to be disabled; the delivery is dead and says so, and this exporter
instance sends nothing more in the same run (its other deliveries die with
the same reason without a request). The state is not kept across runs: a
later run tries each remaining delivery once, gets 410 again and kills it.
Any other 4xx: permanent.

**Where it may send.** ``https://``, or ``http://`` to a loopback host;
never to a private, link-local or otherwise non-public address unless
``allow_private = true``; the URL judged as the HTTP client reads it, at
``hub check`` and by the factory, and every connection made to the address
it checked: :mod:`hub.plugin.outbound` (the guard every exporter that takes
a URL shares) says how.

The secret is read through the host (``config.secret``), kept decoded in
memory only, and appears in no message, log or repr.

This module owns the instance, the event's body, its signature and the
reading of the answer; it must not know retries (the outbox's) nor how a
connection's destination is checked (:mod:`hub.plugin.outbound`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import requests

from hub.plugin import Delivery, DeliveryError, ExporterType, InstanceConfig, hookimpl
from hub.plugin.outbound import (
    PRIVATE_URL_FORMAT,
    URL_FORMAT,
    DestinationRefused,
    UrlRefused,
    check_url,
    guarded_session,
)

SECRET_PREFIX = "whsec_"
#: what is read of a response body at most (for the receiver's id and error messages)
MAX_RESPONSE = 64 * 1024
#: how much of a response body an error message quotes
QUOTE = 200

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "secret_env"],
    "properties": {
        "url": {
            "type": "string",
            "description": "The receiver's endpoint: https://, or http:// to a loopback host only "
                           "(hub.plugin.outbound judges it).",
        },
        "secret_env": {
            "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "description": "The environment variable holding the whsec_ signing secret.",
        },
        "timeout": {
            "type": "number", "exclusiveMinimum": 0, "maximum": 300, "default": 15,
            "description": "Seconds to wait to connect, and for each read of the answer.",
        },
        "documents": {
            "type": "array", "uniqueItems": True, "default": [],
            "items": {"type": "string", "pattern": "^[a-z][a-z0-9_-]*$"},
            "description": "Document formats listed in the event (pdf, ubl...); rendered and validated first.",
        },
        "documents_base_url": {
            "type": "string", "pattern": "^https?://",
            "description": "Each listed document gets url = this + '/' + its file name.",
        },
        "allow_private": {
            "type": "boolean", "default": False,
            "description": "Allow a receiver on loopback, private or link-local addresses (off: SSRF guard).",
        },
        "ca_file": {
            "type": "string",
            "description": "PEM file of the CA to trust for the receiver's certificate (relative to hub.toml).",
        },
    },
    # the outbound guard judges url at hub check (hub.plugin.outbound)
    "if": {"properties": {"allow_private": {"const": True}}, "required": ["allow_private"]},
    "then": {"properties": {"url": {"format": PRIVATE_URL_FORMAT}}},
    "else": {"properties": {"url": {"format": URL_FORMAT}}},
}


# --------------------------------------------------------------------------
# Signing (Standard Webhooks 1.0, v1 = HMAC-SHA256)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: the base64-decoded part after
    the prefix. The message of a refusal never quotes the secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"the secret does not start with {SECRET_PREFIX!r} (Standard Webhooks secrets do)")
    encoded = secret[len(SECRET_PREFIX):].strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part of the secret after {SECRET_PREFIX!r} is not base64") from None
    if not key:
        raise ValueError("the secret is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256
    of ``{id}.{timestamp}.{body}`` (the body's exact bytes)."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


# --------------------------------------------------------------------------
# The answer


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds from ``now``: delay-seconds or an HTTP
    date (a date in the past is 0); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def _read_some(response: requests.Response) -> bytes:
    try:
        return response.raw.read(MAX_RESPONSE, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - the status decides; a body that cannot be read is just not quoted
        return b""


def _quote(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", "replace").split())
    return text if len(text) <= QUOTE else text[:QUOTE] + "..."


def _receiver_id(body: bytes) -> str | None:
    """The receiver's id of what it stored: ``id`` of a JSON object body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    ident = doc.get("id") if isinstance(doc, dict) else None
    if isinstance(ident, (str, int)) and not isinstance(ident, bool) and str(ident).strip():
        return str(ident)[:200]
    return None


def _status_text(code: int, response: requests.Response) -> str:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = response.reason or ""
    return f"HTTP {code} {phrase}".rstrip()


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, without the URL (which may
    carry a token)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    found = None
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            found = cause.strerror
        nxt = cause.__cause__ or cause.__context__
        if nxt is None and cause.args and isinstance(cause.args[0], BaseException):
            nxt = cause.args[0]
        if nxt is None and len(cause.args) > 1 and isinstance(cause.args[1], BaseException):
            nxt = cause.args[1]
        cause = nxt
    return found or type(exc).__name__


def _utc_text(value: datetime) -> str:
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "") + "Z"


# --------------------------------------------------------------------------
# The exporter


class WebhookExporter:
    """One ``[[exporters]]`` instance of type ``webhook``."""

    def __init__(self, config: InstanceConfig) -> None:
        options = config.options
        self.name = config.name
        self.url: str = options["url"]
        self.allow_private = bool(options.get("allow_private", False))
        try:
            self.target = check_url(self.url, allow_private=self.allow_private)
        except UrlRefused as exc:
            raise ValueError(f"url: {exc}") from None
        self.timeout = float(options.get("timeout", 15))
        self.formats: tuple[str, ...] = tuple(options.get("documents", ()))
        base = options.get("documents_base_url")
        self.documents_base_url = base.rstrip("/") if base else None
        self.ca_file = str(config.path(options["ca_file"])) if options.get("ca_file") else None
        try:
            secret = config.secret("secret")
        except KeyError as exc:
            raise ValueError(f"secret_env: {exc.args[0]}") from None
        try:
            self._key = signing_key(secret.reveal())
        except ValueError as exc:
            raise ValueError(f"secret_env: {secret.env}: {exc}") from None
        self._session: requests.Session | None = None
        #: set by a 410: why nothing more is sent by this instance
        self._disabled: str | None = None

    def __repr__(self) -> str:  # never the key
        return f"WebhookExporter(name={self.name!r}, url={self.url!r})"

    # -- what is sent

    def event_timestamp(self, delivery: Delivery) -> str:
        """When the event happened, the same on every attempt."""
        if delivery.created_at is not None:
            return _utc_text(delivery.created_at)
        # A Delivery built without it (a plugin's own tests): the day of the event.
        invoice = delivery.invoice
        day = invoice.get("issue_date")
        if delivery.event == "invoice.paid":
            paid = [p.get("date") for p in invoice.get("payments") or () if p.get("date")]
            day = max(paid) if paid else day
        return f"{day}T00:00:00Z"

    def documents_of(self, delivery: Delivery) -> list[dict[str, Any]]:
        out = []
        for fmt in self.formats:
            doc = delivery.documents.get(fmt)
            if doc is None:
                continue
            item = {"format": fmt, "file_name": doc.file_name, "media_type": doc.media_type,
                    "sha256": hashlib.sha256(doc.content).hexdigest()}
            if self.documents_base_url is not None:
                item["url"] = f"{self.documents_base_url}/{quote(doc.file_name)}"
            out.append(item)
        return out

    def body(self, delivery: Delivery) -> bytes:
        """The request body: serialised once; these bytes are signed and sent."""
        data = {**delivery.invoice, "documents": self.documents_of(delivery)}
        if delivery.event == "invoice.overdue":
            data["reminder"] = dict(delivery.reminder or {})
        payload = {"type": delivery.event, "timestamp": self.event_timestamp(delivery), "data": data}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(self._key, msg_id, timestamp, body),
                "Content-Type": "application/json", "User-Agent": _user_agent()}

    # -- one attempt

    def deliver(self, delivery: Delivery) -> str:
        """POST the event once; the receiver's id, else the webhook id.

        :raises DeliveryError: as the module's docstring says.
        """
        if self._disabled is not None:
            raise DeliveryError(self._disabled, disable=True)
        body = self.body(delivery)
        if self._session is None:
            self._session = guarded_session(self.target, self.ca_file)
        headers = self.headers(delivery.key, int(time.time()), body)
        try:
            response = self._session.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                          allow_redirects=False, stream=True)
        except DestinationRefused as exc:
            raise DeliveryError(str(exc), permanent=True) from None
        except requests.Timeout:
            raise DeliveryError(f"no answer within {self.timeout:g} s: timed out") from None
        except requests.exceptions.SSLError as exc:
            raise DeliveryError(f"TLS failed: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise DeliveryError(f"could not connect: {_reason(exc)}") from None
        with response:
            code = response.status_code
            answer = _read_some(response)
            return self._outcome(delivery, code, response, answer)

    def _outcome(self, delivery: Delivery, code: int, response: requests.Response, answer: bytes) -> str:
        if 200 <= code < 300:
            return _receiver_id(answer) or delivery.key
        status = _status_text(code, response)
        quoted = _quote(answer)
        said = f"{status}: {quoted}" if quoted else status
        if 300 <= code < 400:
            location = _quote(response.headers.get("Location", "").encode()) or "(no Location)"
            raise DeliveryError(f"{status}: redirect to {location} not followed (webhooks never follow redirects; "
                                f"point url at the final address)", permanent=code in (301, 308))
        if code == 410:
            self._disabled = (f"{status} earlier in this run: the endpoint asked to be disabled; not sent "
                              f"(fix or remove exporter {self.name!r}, then hub deliveries retry)")
            raise DeliveryError(f"{said}: the endpoint asked to be disabled; no more events are sent to it in this run "
                                f"(fix or remove exporter {self.name!r}, then hub deliveries retry)", disable=True)
        if code in (408, 429) or code >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            hint = f" (Retry-After {wait:g} s)" if wait is not None else ""
            raise DeliveryError(said + hint, retry_after=wait)
        raise DeliveryError(said, permanent=True)


@functools.cache
def _user_agent() -> str:
    try:
        from importlib.metadata import version

        v = version("billing-hub")
    except Exception:  # noqa: BLE001 - not installed as a distribution: no version to name
        v = "dev"
    return f"billing-hub/{v} (webhook exporter; Standard Webhooks)"


@hookimpl
def hub_register_exporter_types() -> list[ExporterType]:
    return [ExporterType(name="webhook", description="CRM webhooks, signed per Standard Webhooks",
                         config_schema=CONFIG_SCHEMA, factory=WebhookExporter,
                         events=("invoice.issued", "credit_note.issued", "invoice.paid", "invoice.overdue"))]


__all__ = ["CONFIG_SCHEMA", "WebhookExporter", "retry_after_seconds", "sign", "signing_key"]
