"""The ``email`` exporter's transports: how a finished message leaves.

:class:`SmtpTransport` runs one SMTP session per message: EHLO, STARTTLS
(``starttls``) or TLS from the first byte (``ssl``), one AUTH (PLAIN, else
LOGIN: not ``smtplib``'s ``login``, which tries every mechanism with the
same password, two failed logins for one), MAIL FROM with SIZE, RCPT TO the
account's address first: if the server refuses it the transaction ends
before DATA and the bcc get no copy either; a refused bcc address does not
stop the message (the caller is told which were refused).

Every failure is a :class:`Failure`, classified:

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
  ``max_attempts`` with the SMTP error kept.
- permanent (dead at once): another 5xx reply: 550 recipient refused, 552
  too large, 553, 554.

``server`` says whether the failure is the server's (it cannot be reached,
TLS, login) rather than this message's.

:func:`write_maildir` files a message into a Maildir folder instead, once
per delivery key.

This module knows messages, envelopes and servers; it must not know
invoices, templates or where its settings come from, and it is handed the
password only for the login.
"""

from __future__ import annotations

import email.policy
import mailbox
import os
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path

#: SMTP replies about the session's credentials or encryption (RFC 4954, 3207)
AUTH_CODES = frozenset({530, 534, 535, 538})


class Failure(Exception):
    """One attempt's failure: its text, whether it is permanent, and whether
    it is the server's (unreachable, TLS, login) rather than this message's."""

    def __init__(self, message: str, *, permanent: bool, server: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.server = server


class SmtpTransport:
    """One SMTP server, as an instance of the exporter reaches it."""

    def __init__(self, host: str, port: int, tls: str, context: ssl.SSLContext | None, timeout: float,
                 username: str | None, sender: str, bcc: tuple[str, ...]) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.context = context
        self.timeout = timeout
        self.username = username
        self.sender = sender
        self.bcc = bcc

    def send(self, msg: EmailMessage, recipient: str, password: str | None) -> dict[str, tuple[int, bytes]]:
        """One SMTP session sending ``msg`` to ``recipient`` and the bcc; the
        bcc addresses the server refused. The recipient is asked for first:
        when the server refuses it, the transaction is abandoned before DATA
        and nobody gets a copy.

        :raises Failure: the session failed (classified).
        """
        where = f"{self.host}:{self.port}"
        data = msg.as_bytes()  # policy SMTP: CRLF; 7-bit (quoted-printable, base64, RFC 2047 headers)
        stage = "connect"
        smtp: smtplib.SMTP | None = None
        try:
            if self.tls == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            stage = "EHLO"
            smtp.ehlo()
            if self.tls == "starttls":
                stage = "STARTTLS"
                if not smtp.has_extn("starttls"):
                    raise Failure(f"{where} STARTTLS: the server does not offer STARTTLS; not sending in clear "
                                  f"text (tls = \"starttls\")", permanent=False, server=True)
                smtp.starttls(context=self.context)
                smtp.ehlo()
            if self.username is not None:
                stage = "AUTH"
                if not smtp.has_extn("auth"):
                    hint = ' before TLS: set tls = "starttls"' if self.tls == "none" else ""
                    raise Failure(f"{where} AUTH: the server does not offer AUTH{hint}", permanent=False, server=True)
                _login(smtp, self.username, password or "", where)
            stage = "MAIL FROM"
            options = [f"SIZE={len(data)}"] if smtp.has_extn("size") else []
            code, reply = smtp.mail(self.sender, options)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, self.sender)
            stage = "RCPT TO"
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise Failure(f"{where} RCPT TO: {code} {reply_text(reply)}", permanent=code >= 500, server=False)
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
            text = f"{where} {stage}: {exc.smtp_code} {reply_text(exc.smtp_error)}"
            if exc.smtp_code == 530 and self.tls == "none":
                text += ' (the server requires TLS: set tls = "starttls")'
            server = stage in ("EHLO", "STARTTLS", "AUTH") or exc.smtp_code in (421, 530)
            # Refused credentials or clear text (530, 535...) are the
            # operator's to fix in hub.toml or the environment: retried with
            # backoff (so the fix is picked up), then dead after max_attempts.
            permanent = exc.smtp_code >= 500 and not (stage == "AUTH" or exc.smtp_code in AUTH_CODES)
            raise Failure(text, permanent=permanent, server=server) from None
        except ssl.SSLCertVerificationError as exc:
            raise Failure(f"{where} {stage}: the server's certificate is not trusted: {exc.verify_message} "
                          f"(a private CA? set ca_file)", permanent=False, server=True) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, DNS, TLS, disconnected
            raise Failure(f"{where} {stage}: {type(exc).__name__}: {exc}", permanent=False, server=True) from None
        finally:
            if smtp is not None:
                _close(smtp)


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


def reply_text(reply: bytes | str) -> str:
    """A server's reply on one line (smtplib joins the lines of a multi-line reply with newlines)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    """The replies refusing bcc addresses, on one line."""
    return "; ".join(f"{code} {reply_text(text)}" for code, text in refused.values())


def _login(smtp: smtplib.SMTP, user: str, password: str, where: str) -> None:
    """AUTH PLAIN (or LOGIN), once. Not ``smtplib.SMTP.login``: on a 535 it
    tries the next mechanism with the same password, a second failed login
    towards the provider's lockout for nothing. The session is TLS (or
    loopback), so PLAIN is fine; CRAM-MD5 is obsolete."""
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise Failure(f"{where} AUTH: the server offers {' '.join(offered) or 'no mechanism'}; the hub logs in "
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
