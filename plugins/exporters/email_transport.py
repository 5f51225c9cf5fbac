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
per delivery key: written in ``tmp/``, synced, linked into ``new/``; what a
writer killed mid-message left in ``tmp/`` is removed at the next delivery.

This module knows messages, envelopes and servers; it must not know
invoices, templates or where its settings come from, and it is handed the
password only for the login.
"""

from __future__ import annotations

import email.policy
import mailbox
import os
import re
import smtplib
import ssl
import time
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


#: a file in a Maildir's tmp/ older than this is abandoned (the Maildir convention: 36 hours)
STALE_TMP_SECONDS = 36 * 3600
#: the name this module gives a message being written: the delivery key, a dot, the writer's process id
_OUR_TMP = re.compile(r"^(?P<key>msg_[0-9a-f]{32})\.(?P<pid>[0-9]+)$")


def write_maildir(folder: Path, key: str, msg: EmailMessage) -> None:
    """File ``msg`` in the Maildir ``folder`` (made if missing) under ``key``,
    once: written to ``tmp/``, flushed to disk, then linked into ``new/``
    (and the directory entry flushed), so ``new/`` never holds half a
    message and a retry after a crash finds it there (or in ``cur/``, once
    read) and writes nothing. What a killed writer left in ``tmp/`` is
    removed first (:func:`clean_maildir_tmp`)."""
    mailbox.Maildir(str(folder), create=True)  # tmp/, new/, cur/
    clean_maildir_tmp(folder)
    if _filed(folder, key):
        return
    tmp = folder / "tmp" / f"{key}.{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(msg.as_bytes(policy=email.policy.default))  # LF line ends, as Maildir readers expect
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, folder / "new" / key)
        except FileExistsError:
            pass  # another worker filed it first
        _fsync_dir(folder / "new")
    finally:
        tmp.unlink(missing_ok=True)


def clean_maildir_tmp(folder: Path, now: float | None = None) -> list[str]:
    """Remove what no writer will finish from ``folder``'s ``tmp/``; the
    names removed. A file of ours (``<delivery key>.<pid>``) goes when its
    message is already filed in ``new/`` or ``cur/`` or its writer is no
    longer running on this machine (it was killed mid-write: the delivery's
    retry writes it again); any file goes once older than 36 hours."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder / "tmp"))
    except FileNotFoundError:
        return removed
    for entry in entries:
        ours = _OUR_TMP.match(entry.name)
        try:
            stale = now - entry.stat(follow_symlinks=False).st_mtime > STALE_TMP_SECONDS
        except FileNotFoundError:
            continue  # its writer just finished
        if not (stale or (ours and (_filed(folder, ours["key"]) or not _running(int(ours["pid"]))))):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            continue  # not a message: left alone
        removed.append(entry.name)
    return sorted(removed)


def _filed(folder: Path, key: str) -> bool:
    return ((folder / "new" / key).exists() or (folder / "cur" / key).exists()
            or any((folder / "cur").glob(f"{key}:*")))


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (ours always does)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or no such number): not ours to judge, the age rule applies
    return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # a file system that cannot sync a directory
    finally:
        os.close(fd)


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
