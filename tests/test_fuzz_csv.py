"""Fuzzing the CSV source (issue 24): random rows and files pulled into
SQLite and PostgreSQL.

Whatever a file holds (any encoding, NUL and control characters, huge
fields, extreme numbers and dates, any quoting), ``hub pull`` stores each
row or quarantines it, exits 0 or 3 (never 4, a failed source, never a
traceback), blocks nothing (a valid row written afterwards is imported) and
loses nothing accepted before (the records stored before are all still
there, unchanged).

Bounded for CI: :data:`FUZZ` runs 25 derandomized examples per test
(the same ones on every run, no example database); ``HUB_FUZZ_EXAMPLES=500``
runs more of them locally (``HUB_FUZZ_DUMP=FILE`` appends each failing
file's bytes to FILE: the workspace is shared by a test's examples, so the
first failing one is the one to replay). The pulls run in-process (``hub pull`` through
click's runner, which lets any exception through: a traceback fails the
test).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import HEADER, STANDARD_CONFIG, Workspace
from tests.test_csv_source import T0, T1, line, pull, stored

#: the CI profile: few examples, the same on every run, nothing remembered
FUZZ = settings(max_examples=int(os.environ.get("HUB_FUZZ_EXAMPLES", "25")), deadline=None, derandomize=True,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow, HealthCheck.data_too_large])

# --------------------------------------------------------------------------
# strategies

#: characters a hostile file holds: NUL and every C0 control, DEL, C1
#: controls, the CSV's own syntax, line and paragraph separators, a BOM,
#: non-characters, combining marks and characters outside the BMP
NASTY = "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x85\x9f\xa0\u2028\u2029\ufeff\ufffe\uffff\u0301\U0001f600" \
        "\",'; \\"
nasty_text = st.text(alphabet=st.sampled_from(NASTY) | st.characters(codec="utf-8"), max_size=12)

EXTREME_NUMBERS = ["0", "-0", "0.000000001", "0.0000000001", "1e400", "-1e-400", "NaN", "-NaN", "sNaN", "Infinity",
                   "-inf", "999999999999999.999999999", "1000000000000000", "1" * 400, "0x10", "1_000", "１２",
                   "+1", " 1 ", "1.", ".5", "1e", "1e+2", "1E-9", "٣", "1,5"]
EXTREME_TIMES = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-12:00",
                 "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-10-01T23:59:60Z",
                 "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "2026-10-01T10:00:00.999999999999Z",
                 "2026-10-01T10:00:00+24:00", "2026-10-01T10:00:00+14:01", "2026-10-01t10:00:00z",
                 "2026-10-01 10:00:00Z", "2026-10-01T10:00:00", "2026-10-01", "+12026-10-01T10:00:00Z",
                 "2026-W40-1T10:00:00Z", "2026-10-01T10:00:00-00:00", "20261001T100000Z", "9" * 30]
HUGE = ["x" * 100_000, "v" * 501, "m" * 201, "é" * 300]

numbers = st.sampled_from(EXTREME_NUMBERS) | st.decimals(allow_nan=True, allow_infinity=True).map(str) \
    | st.integers(min_value=-(10 ** 30), max_value=10 ** 30).map(str) | st.floats().map(repr)
times = st.sampled_from(EXTREME_TIMES) | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())


def _field(valid: str, kind: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The valid value most of the time (so that rows are often stored),
    else something extreme of its kind, random text or a huge text."""
    return st.one_of(st.just(valid), st.just(valid), kind, nasty_text, st.sampled_from(HUGE))


@st.composite
def rows(draw: Any, n: int) -> list[str]:
    """A data row: the standard columns (a record id unique to example
    ``n`` unless it is fuzzed), sometimes a field too few or too many."""
    fields = [
        draw(st.just(f"e{n}-{draw(st.integers(0, 10 ** 6))}") | nasty_text.map(lambda t, n=n: f"e{n}-{t}")),
        draw(_field("acme", st.sampled_from(["globex", "ACME", "acme ", "nobody", ""]))),
        draw(_field("vm-1", nasty_text)),
        draw(_field("compute.vcpu", st.sampled_from(["network.egress", "gpu.hours", ""]))),
        draw(_field(T0, times)),
        draw(_field(T1, times | st.just(""))),
        draw(_field("2", numbers)),
    ]
    shape = draw(st.sampled_from(["same", "same", "same", "fewer", "more"]))
    if shape == "fewer":
        fields.pop()
    elif shape == "more":
        fields.append(draw(nasty_text))
    return fields


QUOTING = [csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, None]


def _encode_row(fields: list[str], quoting: int | None) -> str:
    if quoting is None:  # written by hand: nothing escaped
        return ",".join(fields) + "\n"
    out = io.StringIO()
    csv.writer(out, quoting=quoting, lineterminator="\n").writerow(fields)
    return out.getvalue()


ENCODINGS = ["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]


@st.composite
def csv_files(draw: Any, n: int) -> bytes:
    """A file of the standard header and random rows, in a random encoding
    and line ending, sometimes with random bytes spliced in."""
    body = HEADER + "".join(_encode_row(r, draw(st.sampled_from(QUOTING)))
                            for r in draw(st.lists(rows(n), min_size=1, max_size=6)))
    if draw(st.booleans()):
        body = body.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\n\n", "\n"])))
    encoding = draw(st.sampled_from(ENCODINGS))
    data = body.encode(encoding, "surrogatepass" if encoding.startswith("utf-8") else "replace")
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=16)) + data[at:]
    if draw(st.integers(0, 3)) == 0:
        data = data[:draw(st.integers(0, len(data)))]  # cut anywhere, as a writer caught mid-write
    return data


# --------------------------------------------------------------------------
# the properties

REQUIRED = HEADER.rstrip("\n").split(",")

BASE = HEADER + line("base-1") + line("base-2", "globex", "vm-2", "network.egress", T0, "", "1.5") \
    + line("base-3", start="2026-10-01T11:00:00+02:00", end="")


def _counts(result: Any) -> tuple[int, int, int]:
    """imported, updated, quarantined of a one-source pull's summary line."""
    text = result.stdout.strip()
    assert text.startswith("files: ") and "FAILED" not in text, result.output
    parts = text.removeprefix("files: ").split(", ")
    return tuple(int(p.split(" ")[0]) for p in parts)  # type: ignore[return-value]


class _Fuzzed:
    """One workspace per test; every example writes its own files into it."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        ws.write("usage/base.csv", BASE)
        assert _counts(pull(ws)) == (3, 0, 0)
        self.before = stored(ws)
        self.n = itertools.count()

    def check(self, name: str, data: bytes) -> None:
        try:
            self._check(name, data)
        except AssertionError:
            if os.environ.get("HUB_FUZZ_DUMP"):
                with open(os.environ["HUB_FUZZ_DUMP"], "a") as fh:
                    fh.write(f"{name}: {data!r}\n")
            raise

    def _check(self, name: str, data: bytes) -> None:
        ws = self.ws
        path = ws.root / "usage" / f"{name}.csv"
        path.write_bytes(data)
        result = pull(ws, code=None)
        assert result.exit_code in (0, 3), (result.exit_code, result.output)
        imported, updated, quarantined = _counts(result)
        assert updated == 0  # every example's record ids are its own
        if quarantined:
            assert "see them with: hub quarantine list" in result.stderr
        after = stored(ws)
        # nothing accepted before is lost or changed
        assert {rid: after.get(rid) for rid in self.before} == self.before, "a stored record changed"
        assert len(after) == len(self.before) + imported
        for record in after.values():
            assert "\x00" not in record["record_id"] + record["resource_id"] + record["account"]
        self.before = after

        # the source is not blocked: a valid row in a new file is imported...
        ok = f"ok-{name}"
        (ws.root / "usage" / f"{name}-later.csv").write_text(HEADER + line(ok))
        # ... and one appended to the fuzzed file too, unless a quote it
        # opened runs to its end (then the row is a part of that field)
        append = b'"' not in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        if append:
            with open(path, "ab") as fh:
                # (a last line without its newline is a line a writer is
                # still writing: the newline ends it, a bare CR does not)
                fh.write(("" if data.endswith(b"\n") or not data else "\n").encode()
                         + line(f"{ok}-appended").encode())
        result = pull(ws, code=None)
        assert result.exit_code in (0, 3), (result.exit_code, result.output)
        _counts(result)
        after = stored(ws)
        assert ok in after
        if append and data.startswith(HEADER.encode()):
            assert f"{ok}-appended" in after, result.output
        assert all(rid in after for rid in self.before), "a stored record was lost"
        # the last row of a file cut mid-line may be completed by the append;
        # the records of earlier examples stay as they were
        earlier = {rid: r for rid, r in self.before.items() if not r["origin"].startswith(f"usage/{name}.csv:")}
        assert {rid: after[rid] for rid in earlier} == earlier, "a stored record changed"
        self.before = after


def test_random_rows_are_stored_or_quarantined_and_never_block_the_source(workspace):
    fuzz = _Fuzzed(workspace)

    @FUZZ
    @given(data=st.data())
    def run(data: Any) -> None:
        n = next(fuzz.n)
        fuzz.check(f"rows-{n}", data.draw(csv_files(n)))

    run()


def test_random_bytes_are_stored_or_quarantined_and_never_block_the_source(workspace):
    fuzz = _Fuzzed(workspace)

    @FUZZ
    @given(blob=st.binary(max_size=400) | st.text(alphabet=st.sampled_from(NASTY + "abc,0123456789-:TZ"),
                                                  max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
           with_header=st.booleans())
    def run(blob: bytes, with_header: bool) -> None:
        n = next(fuzz.n)
        fuzz.check(f"bytes-{n}", (HEADER.encode() if with_header else b"") + blob)

    run()


def test_a_file_of_huge_fields_and_long_lines_is_quarantined_row_by_row(workspace):
    fuzz = _Fuzzed(workspace)

    @FUZZ
    @given(size=st.sampled_from([501, 10_000, 200_000, 2_000_000]), column=st.integers(0, 7),
           quoted=st.booleans())
    def run(size: int, column: int, quoted: bool) -> None:
        n = next(fuzz.n)
        fields = [f"e{n}-big", "acme", "vm-1", "compute.vcpu", T0, T1, "2"]
        huge = "y" * size
        if column < len(fields):
            fields[column] = huge if column else f"e{n}-{huge}"
        else:
            fields.append(huge)
        row = _encode_row(fields, csv.QUOTE_ALL if quoted else None)
        fuzz.check(f"huge-{n}", (HEADER + line(f"e{n}-a") + row + line(f"e{n}-b")).encode())
        assert f"e{n}-a" in fuzz.before and f"e{n}-b" in fuzz.before

    run()


LABEL_NAMES = st.sampled_from(["note", "Note", "team", "", " ", "a\x00b", "é", "unit ", "record_id ", "x" * 300,
                               "label\nname", '"q"', "\ufeffbom"]) | nasty_text


def test_random_headers_labels_units_and_delimiters_are_stored_or_quarantined(workspace):
    # a source reading ';' files, naive timestamps in Paris time
    workspace.config(STANDARD_CONFIG.replace('path = "usage/*.csv"', 'path = "usage/*.csv"\ndelimiter = ";"\n'
                                                                      'timezone = "Europe/Paris"')
                     + '\n[[meters]]\nname = "jobs"\naggregation = "sum"\n')
    workspace.write("usage/base.csv", BASE.replace(",", ";"))
    assert _counts(pull(workspace)) == (3, 0, 0)
    before = stored(workspace)
    counter = itertools.count()

    @FUZZ
    @given(order=st.permutations(REQUIRED), unit=st.booleans(), labels=st.lists(LABEL_NAMES, max_size=3),
           data=st.data())
    def run(order: list[str], unit: bool, labels: list[str], data: Any) -> None:
        nonlocal before
        n = next(counter)
        columns = [*order, *(["unit"] if unit else []), *labels]
        values = []
        for i in range(data.draw(st.integers(1, 4))):
            valid = {"record_id": f"h{n}-{i}", "account": "acme", "resource_id": "vm-1",
                     "meter": data.draw(st.sampled_from(["compute.vcpu", "jobs"])),
                     "start": data.draw(st.sampled_from([T0, "2026-10-25T02:30:00", "2026-03-29T02:30:00",
                                                         "2026-10-01T10:00:00"])),
                     "end": data.draw(st.sampled_from(["", T1, "2026-10-25T03:30:00"])), "quantity": "2",
                     "unit": data.draw(st.sampled_from(["", "vCPU", "GB", "u" * 101]))}
            values.append([valid.get(c, "") if data.draw(st.integers(0, 4)) else data.draw(nasty_text)
                           for c in columns] if data.draw(st.booleans()) else
                          [valid.get(c) or data.draw(nasty_text) for c in columns])
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(values)
        (workspace.root / "usage" / f"h{n}.csv").write_bytes(out.getvalue().encode("utf-8", "surrogatepass"))
        result = pull(workspace, code=None)
        assert result.exit_code in (0, 3), (result.exit_code, result.output)
        imported, updated, _quarantined = _counts(result)
        after = stored(workspace)
        assert {rid: after.get(rid) for rid in before} == before, "a stored record changed"
        assert len(after) == len(before) + imported and updated == 0
        (workspace.root / "usage" / f"h{n}-later.csv").write_text(HEADER.replace(",", ";") + line(f"ok-h{n}")
                                                                  .replace(",", ";"))
        result = pull(workspace, code=None)
        assert result.exit_code in (0, 3), (result.exit_code, result.output)
        before = stored(workspace)
        assert f"ok-h{n}" in before

    run()
