"""The ``email`` exporter's Maildir after a writer was killed mid-message
(issue 24, item 10): the next delivery removes what the dead writer left
in ``tmp/``, files the message once, and ``new/`` never holds half a one.

The kill is real: a subprocess runs :func:`write_maildir` and SIGKILLs
itself after writing the message to ``tmp/``, before linking it into
``new/`` (the moment a crash leaves the most behind).
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import textwrap
import time
from email.message import EmailMessage
from pathlib import Path

from hub.outbox import delivery_key
from hub_plugins.exporters.email_transport import STALE_TMP_SECONDS, clean_maildir_tmp, write_maildir

KEY = delivery_key("INV-2025-000001", "mail", "invoice.issued")
OTHER = delivery_key("INV-2025-000002", "mail", "invoice.issued")

KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from email.message import EmailMessage
    from pathlib import Path
    import hub_plugins.exporters.email_transport as transport

    def die(fd):
        os.kill(os.getpid(), signal.SIGKILL)   # the message is in tmp/, not yet in new/

    transport.os.fsync = die
    msg = EmailMessage()
    msg["Subject"] = "Invoice INV-2025-000001"
    msg.set_content("x" * 100000)
    transport.write_maildir(Path(sys.argv[1]), sys.argv[2], msg)
""")


def _message(text: str = "Your invoice") -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "Invoice INV-2025-000001"
    msg["Message-ID"] = "<inv-1@hub-cloud.example>"
    msg.set_content(text)
    return msg


def _killed_mid_write(folder: Path, key: str) -> int:
    """Run write_maildir in a subprocess killed after it wrote tmp/; its pid."""
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), key], capture_output=True,
                           cwd=Path(__file__).resolve().parents[1])
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    [left] = (folder / "tmp").iterdir()
    return int(left.name.rsplit(".", 1)[1])


def test_a_writer_killed_mid_message_leaves_nothing_in_new_and_the_next_delivery_cleans_tmp_and_files_it_once(
        tmp_path):
    folder = tmp_path / "mail"
    pid = _killed_mid_write(folder, KEY)
    assert [p.name for p in (folder / "tmp").iterdir()] == [f"{KEY}.{pid}"]
    assert list((folder / "new").iterdir()) == []  # never half a message where a mail client reads
    write_maildir(folder, KEY, _message())  # the outbox's retry of the same delivery
    assert list((folder / "tmp").iterdir()) == []
    assert [p.name for p in (folder / "new").iterdir()] == [KEY]
    filed = email.message_from_bytes((folder / "new" / KEY).read_bytes(), policy=email.policy.default)
    assert (filed["Message-ID"], filed.get_content()) == ("<inv-1@hub-cloud.example>", "Your invoice\n")
    write_maildir(folder, KEY, _message())  # once: a further retry files nothing
    assert [p.name for p in (folder / "new").iterdir()] == [KEY]


def test_the_leftover_of_a_killed_writer_is_removed_by_the_next_delivery_of_another_message(tmp_path):
    folder = tmp_path / "mail"
    _killed_mid_write(folder, KEY)
    write_maildir(folder, OTHER, _message())
    assert list((folder / "tmp").iterdir()) == []
    assert [p.name for p in (folder / "new").iterdir()] == [OTHER]


def test_clean_maildir_tmp_keeps_a_running_writers_file_and_a_recent_foreign_one_and_removes_what_is_stale(tmp_path):
    folder = tmp_path / "mail"
    write_maildir(folder, OTHER, _message())
    tmp = folder / "tmp"
    running = tmp / f"{KEY}.{os.getpid()}"  # a message this process is writing right now
    filed_leftover = tmp / f"{OTHER}.{os.getpid()}"  # already in new/: its writer died after the link
    foreign = tmp / "1733616000.M1P2.mailhost"  # another program's, recent
    foreign_old = tmp / "1600000000.M1P2.mailhost"  # another program's, older than 36 h
    for path in (running, filed_leftover, foreign, foreign_old):
        path.write_bytes(b"Subject: x\n\npart")
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(foreign_old, (old, old))
    assert clean_maildir_tmp(folder) == sorted([filed_leftover.name, foreign_old.name])
    assert sorted(p.name for p in tmp.iterdir()) == sorted([running.name, foreign.name])
    # a running writer's file too, once older than 36 h
    os.utime(running, (old, old))
    assert clean_maildir_tmp(folder) == [running.name]
