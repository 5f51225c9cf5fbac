"""Fuzzing hub.toml (issue 24): random values (numbers, durations, formats,
strings with control characters, nested arrays and tables) put in place of
the starter configuration's values, keys removed, unknown keys added.

``load_config`` returns a configuration or raises ConfigErrors whose every
error names its file (and the table and key where it is); ``hub check``
prints ``ok`` (exit 0) or the errors (exit 2): never another exception.

The values issue 24 listed as crashing invoicing (items 7 and 8: a
``payment_terms_days`` past the calendar, a ``grace`` of billions of days,
number formats that are paths or attributes, a price too large to round,
5,000 nested arrays) are refused by ``hub check`` since 32a7b8d: each has
its own test below, and the random strategy reaches them too, as it does
the crash this fuzzing found (a price ``model`` that is a list or a table:
a TypeError in hub/config/catalog.py, now an unknown price model).

Bounded for CI like tests/test_fuzz_csv.py (:data:`FUZZ`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config import ConfigErrors, load_config
from hub.host import build_host

REPO = Path(__file__).resolve().parents[1]

FUZZ = settings(max_examples=int(os.environ.get("HUB_FUZZ_EXAMPLES", "60")), deadline=None, derandomize=True,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
#: the store's URL is left as it is (``hub check`` opens the store: a random
#: PostgreSQL URL would wait for its server; a URL of no backend is tested
#: in tests/test_config_bounds.py)
FIXED = {"database", "database_env"}


def _starter() -> dict[str, Any]:
    """The `hub init` starter (hub.toml and config/*.toml) as one document."""
    doc = tomllib.loads((REPO / "hub.toml").read_text())
    doc.pop("include")
    for part in sorted((REPO / "config").glob("*.toml")):
        for key, value in tomllib.loads(part.read_text()).items():
            doc.setdefault(key, []).extend(value) if isinstance(value, list) else doc.setdefault(key, value)
    doc["dunning"] = {"after_days": [7, 14, 30]}
    doc["invoicing"]["minimum_amount"] = "5.00"
    return doc


BASE = _starter()


# --------------------------------------------------------------------------
# TOML out of Python values (every table inline: one line per top-level key)


def _string(text: str) -> str:
    # JSON's escapes are TOML's; TOML wants DEL escaped too
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, datetime) and value.utcoffset() is not None and value.utcoffset().seconds % 60:
        try:  # TOML offsets are in minutes
            value = value.astimezone(timezone.utc)
        except OverflowError:
            value = value.replace(tzinfo=timezone.utc)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(value)


def toml_document(doc: dict[str, Any]) -> str:
    return "".join(f"{_string(k)} = {toml_value(v)}\n" for k, v in doc.items())


# --------------------------------------------------------------------------
# strategies

CONTROL = "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\x85\u2028\u2029\ufeff"
strings = st.one_of(
    st.text(alphabet=st.sampled_from(CONTROL) | st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", " ", "EUR", "eur", "XXX", "UTC", "Europe/Paris", "Mars/Olympus", "../../etc/passwd",
                     "half_up", "monthly", "time_weighted", "per_unit", "1s", "0s", "10m", "1h30m", "-1d", "1d1d",
                     "999d", "1.5h", "1e3s", "DE", "de", "acme", "acme\r\nBcc: x@evil.example", "a" * 10_000,
                     "0", "-0", "0.0000115", "1e400", "NaN", "-1", "5.00", "2027-06-30", "2026-02-30",
                     "{seq}", "{year}-{seq:06d}", "{seq:d}", "{month}", "{}", "{0}", "{", "}", "%s",
                     "99999999999d", "{seq:099999999d}", "../../{year}/{seq}", "{seq.__class__}", "{seq!r}",
                     "100000000000000000000", "0.0000000000000000001", "1" * 400]),
)
durations = st.from_regex(r"\A-?[0-9]{1,6}[smhdw]\Z", fullmatch=True) | st.sampled_from(["1d", "0s", "24h", "1w"])
numbers = st.one_of(st.integers(min_value=-(10 ** 6), max_value=10 ** 6),
                    st.sampled_from([0, -1, 1, 3650, 3651, 100_000_000, 2 ** 31 - 1, 2 ** 31, 2 ** 63 - 1, -(2 ** 63),
                                     99_999_999_999_999_999_999]),
                    st.floats(), st.booleans())
dates = st.dates() | st.datetimes() | st.datetimes(timezones=st.timezones()) | st.times()
scalars = st.one_of(strings, durations, numbers, dates)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
#: deep nesting (5,000 levels: a test of its own below)
nested = st.integers(1, 40).map(lambda n: json.loads("[" * n + "]" * n))


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document a value can be put or taken from."""
    out = [at] if at else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*at, i))
    return out


PATHS = [p for p in _paths(BASE) if not FIXED & {k for k in p if isinstance(k, str)}]


def _leaf(path: tuple[Any, ...]) -> bool:
    value: Any = BASE
    for k in path:
        value = value[k]
    return not isinstance(value, (dict, list))


#: the values more often than the tables and arrays that hold them
PLACES = st.sampled_from([p for p in PATHS if _leaf(p)]) | st.sampled_from(PATHS)


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    """The starter with one to three places changed: a random value put
    there, the key removed, or an unknown key added beside it."""
    doc = copy.deepcopy(BASE)
    for path in draw(st.lists(PLACES, min_size=1, max_size=3, unique=True)):
        parent: Any = doc
        try:
            for k in path[:-1]:
                parent = parent[k]
            if not isinstance(parent, (dict, list)):
                raise TypeError
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change took it away
        op = draw(st.sampled_from(["value"] * 6 + ["nested", "remove", "unknown"]))
        if op == "value":
            parent[path[-1]] = draw(values)
        elif op == "nested":
            parent[path[-1]] = draw(nested)
        elif op == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(scalars)
    return doc


# --------------------------------------------------------------------------
# the properties


def _check_errors(exc: ConfigErrors) -> None:
    assert exc.errors, "ConfigErrors without an error"
    for error in exc.errors:
        assert str(error).startswith("hub.toml"), str(error)
        assert error.message.strip(), str(error)


def _hub_check(config_path: Path) -> Any:
    from hub.cli.main import register_commands

    return CliRunner().invoke(register_commands(), ["--config", str(config_path), "check"], catch_exceptions=False)


@pytest.fixture(scope="module")
def host() -> Any:
    return build_host()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    (tmp_path / "usage").mkdir()
    return tmp_path / "hub.toml"


def _write(path: Path, doc: dict[str, Any]) -> None:
    doc = dict(doc)
    hub = dict(doc.get("hub") or {}) if isinstance(doc.get("hub"), dict) else doc.get("hub")
    if isinstance(hub, dict) and "database" in hub and isinstance(hub["database"], str) \
            and hub["database"] == BASE["hub"]["database"]:
        hub["database"] = f"sqlite:///{path.parent / 'hub.db'}"
        doc["hub"] = hub
    path.write_text(toml_document(doc), encoding="utf-8")


def test_the_starter_as_written_by_the_fuzzer_is_ok(config_file, host):
    _write(config_file, BASE)
    config = load_config(config_file, host)
    assert list(config.accounts) == ["acme"]
    result = _hub_check(config_file)
    assert (result.exit_code, result.stdout) == (
        0, "hub.toml: ok (3 meters, 1 account, 1 source, 0 exporters, 0 renderers)\n")


def test_random_values_load_or_raise_config_errors_naming_where(config_file, host):
    @FUZZ
    @given(doc=configs())
    def run(doc: dict[str, Any]) -> None:
        _write(config_file, doc)
        try:
            load_config(config_file, host)
        except ConfigErrors as exc:
            _check_errors(exc)

    run()


def test_hub_check_of_random_values_says_ok_or_lists_the_errors(config_file):
    @FUZZ
    @given(doc=configs())
    def run(doc: dict[str, Any]) -> None:
        _write(config_file, doc)
        result = _hub_check(config_file)
        assert result.exit_code in (0, 2), (result.exit_code, result.output)
        if result.exit_code == 0:
            assert result.stdout.startswith("hub.toml: ok (")
        else:
            assert result.stderr.strip(), result.output

    run()


def test_bytes_that_are_not_toml_or_not_utf8_are_config_errors(config_file, host):
    @FUZZ
    @given(data=st.binary(max_size=200) | st.text(alphabet=st.sampled_from(CONTROL + "[]{}=\"'.,#a1 "),
                                                  max_size=200).map(str.encode))
    def run(data: bytes) -> None:
        config_file.write_bytes(data)
        try:
            load_config(config_file, host)
        except ConfigErrors as exc:
            _check_errors(exc)

    run()


# --------------------------------------------------------------------------
# issue 24, items 7 and 8: what crashed invoicing is refused by hub check

REFUSED = {
    "payment_terms_days past the calendar": (("invoicing",), "payment_terms_days", 100_000_000),
    "payment_terms_days past a C int": (("invoicing",), "payment_terms_days", 99_999_999_999_999_999_999),
    "a grace of billions of days": (("invoicing",), "grace", "99999999999d"),
    "a number format of a hundred million digits": (("invoicing",), "number_format", "{seq:099999999d}"),
    "a number format that is a path": (("invoicing",), "number_format", "../../{year}/{seq}"),
    "a number format reading an attribute": (("invoicing",), "number_format", "{seq.__class__}"),
    "a unit price too large to invoice": (("products", 0, "price"), "unit_price", "100000000000000000000"),
    "a price model that is an array (found by this fuzzing)": (("products", 0, "price"), "model", []),
    "a price model that is a table (found by this fuzzing)": (("products", 0, "price"), "model", {"a": 1}),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_hub_check_refuses_what_invoicing_cannot_do_naming_the_key(config_file, case):
    at, key, value = REFUSED[case]
    doc = copy.deepcopy(BASE)
    table: Any = doc
    for k in at:
        table = table[k]
    table[key] = value
    _write(config_file, doc)
    result = _hub_check(config_file)
    assert result.exit_code == 2, result.output
    assert f"{key}:" in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_five_thousand_nested_arrays_are_a_config_error(config_file):
    config_file.write_text(f'[hub]\ndatabase = "sqlite:///{config_file.parent / "hub.db"}"\n'
                           f'x = {"[" * 5000}{"]" * 5000}\n')
    result = _hub_check(config_file)
    assert result.exit_code == 2, result.output
    assert "hub.toml: nests arrays or tables more than 32 deep" in result.stderr
