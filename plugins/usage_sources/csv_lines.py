"""The csv source's reading of a file: its lines from a byte offset, with
what the ``csv`` module cannot tell.

:class:`Lines` hands ``csv.reader`` one line at a time and keeps, for each
row, its byte offset, its raw bytes, its line number and the first invalid
UTF-8 in it; the block path takes many complete lines at once. This module
knows bytes and lines only: not the columns, not a record.
"""

from __future__ import annotations

from typing import Any


class Lines:
    """The lines of a binary file from an offset, read in large chunks.

    ``csv.reader`` takes them one at a time (``__next__``), which keeps what
    the csv module cannot tell: byte offsets, raw bytes and UTF-8 errors;
    the block path takes many at once (:meth:`peek`, :meth:`skip`).
    """

    CHUNK = 1 << 20

    def __init__(self, fh: Any, offset: int, line: int) -> None:
        self.fh = fh
        self.offset = offset  # of the next line not taken
        self.line = line  # the number of the last line taken
        self.raw: list[bytes] = []
        self.decode_error: str | None = None
        self.complete = True
        self.eof = False
        self._ahead: list[bytes] = []  # complete lines read ahead, without their newline
        self._next = 0  # the index in _ahead of the next line
        self._tail = b""  # what was read after the last newline
        self._ended = False

    def _read_ahead(self) -> bool:
        """Read another chunk; ``False`` at the end of the file."""
        if self._ended:
            return False
        chunk = self.fh.read(self.CHUNK)
        if not chunk:
            self._ended = True
            return False
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        self._ahead = self._ahead[self._next:] + lines if self._next < len(self._ahead) else lines
        self._next = 0
        return True

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        while self._next >= len(self._ahead):
            if not self._read_ahead():
                break
        if self._next < len(self._ahead):
            data = self._ahead[self._next] + b"\n"
            self._next += 1
        elif self._tail:  # a last line without a newline
            data, self._tail = self._tail, b""
        else:
            self.eof = True
            raise StopIteration
        start = self.offset
        self.offset += len(data)
        self.line += 1
        self.raw.append(data)
        self.complete = data.endswith(b"\n")
        if start == 0 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
            start = 3
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.decode_error is None:
                self.decode_error = f"invalid UTF-8 at byte {start + exc.start} (line {self.line})"
            return data.decode("utf-8", "replace")

    def take(self) -> bytes:
        """The raw bytes of the row just read."""
        raw = b"".join(self.raw)
        self.raw.clear()
        return raw

    def peek(self, n: int) -> list[bytes]:
        """Up to ``n`` complete lines ahead, without their newlines (fewer
        only near the end of the file); they stay to be taken."""
        while len(self._ahead) - self._next < n and self._read_ahead():
            pass
        return self._ahead[self._next:self._next + n]

    def skip(self, lines: int, size: int) -> None:
        """Take ``lines`` lines just peeked, ``size`` bytes in all."""
        self._next += lines
        self.offset += size
        self.line += lines
