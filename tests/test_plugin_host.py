"""The plugin host: entry-point discovery, conflicts, failure isolation, the
plugin author's contract (hookspecs, typed records, secrets).

Third-party plugins are real distributions written into the test's
directory (a package plus the ``*.dist-info`` that ``pip install`` writes),
found through the ``hub.plugins`` entry-point group exactly like an installed
one: in-process by putting the directory on ``sys.path``, end to end by
running the ``hub`` command with it on ``PYTHONPATH``.
"""

from __future__ import annotations

import importlib.metadata as md
import inspect
import json
import os
import subprocess
import sys
import textwrap
import types
from decimal import Decimal
from pathlib import Path

import pluggy
import pytest
from sqlalchemy import create_engine, select

import hub.host
from hub import hookspecs
from hub.config import load_config
from hub.hookspecs import hookimpl
from hub.host import PluginConflict, build_host
from hub.ingest import pull
from hub.plugin_types import (
    ExporterType,
    InstanceConfig,
    PluginFailure,
    PullBatch,
    Secret,
    SourceType,
    UsageRecord,
)
from hub.store.db import open_store
from hub.store.tables import checkpoints, pull_runs, quarantine, usage_records
from tests.conftest import METERS_AND_ACCOUNTS, Workspace

HUB_DIST = "billing-hub"
HUB_VERSION = md.version(HUB_DIST)
CSV_MODULE = "hub_plugins.usage_sources.csv_source"

#: the entry points this distribution itself installs (its bundled plugins)
BUNDLED = sorted(ep.name for ep in md.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
                 if ep.dist is not None and ep.dist.metadata["Name"] == HUB_DIST)

#: the modules the throwaway distributions of these tests define
TEST_MODULES = ("acme_hub_plugin", "broken_hub_plugin", "odd_hub_plugin")

OCT_1_10H = 1790848800  # 2026-10-01T10:00:00Z


# --------------------------------------------------------------------------
# Helpers: a distribution as pip installs it, and the hub as a user runs it


def install_dist(site: Path, name: str, version: str, files: dict[str, str], entry_points: dict[str, str]) -> Path:
    """Write the distribution ``name`` into ``site`` the way ``pip install``
    does: its modules, and ``<name>-<version>.dist-info`` with ``METADATA``
    and the ``hub.plugins`` entries of ``entry_points.txt``."""
    site.mkdir(parents=True, exist_ok=True)
    for rel, source in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    eps = "".join(f"{ep} = {target}\n" for ep, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[hub.plugins]\n{eps}", encoding="utf-8")
    (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    return site


def run_hub(*args: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the ``hub`` command in a fresh interpreter with ``site`` on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "250"  # one table row per line, whatever the description
    env.pop("HUB_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", "from hub.cli.main import main; main()", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the ``hub plugins`` table, by type name (the first
    column); the description is the rest of the line, as one cell."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines and lines[0].split()[:5] == ["type", "kind", "plugin", "distribution", "version"], stdout
    rows = {}
    for line in lines[1:]:
        cells = line.split(None, 5)
        rows[cells[0]] = [*cells[:5], cells[5].strip() if len(cells) > 5 else ""]
    return rows


@pytest.fixture(autouse=True)
def forget_test_modules():
    """The throwaway plugins share module names across tests: forget them."""
    yield
    for name in list(sys.modules):
        if name.split(".")[0] in TEST_MODULES:
            del sys.modules[name]


# --------------------------------------------------------------------------
# The third-party plugin of these tests


ACME_PLUGIN = '''
    """ACME cloud usage for the hub: a third-party plugin."""

    from decimal import Decimal

    from hub.hookspecs import hookimpl
    from hub.plugin_types import PullBatch, SourceType, UsageRecord

    SCHEMA = {
        "type": "object",
        "additionalProperties": False,
        "required": ["account"],
        "properties": {
            "account": {"type": "string", "minLength": 1},
            "resource": {"type": "string", "default": "vm-acme-1"},
        },
    }


    class AcmeSource:
        def __init__(self, config):
            self.account = config.options["account"]
            self.resource = config.options["resource"]

        def pull(self, checkpoint, ctx):
            done = (checkpoint or {}).get("cursor", 0)
            records = [
                UsageRecord(record_id="acme-1", account=self.account, resource_id=self.resource,
                            meter="compute.vcpu", start=1790848800, end=1790849562, quantity=Decimal("2"),
                            unit="vCPU", labels={"zone": "eu-1"}),
                UsageRecord(record_id="acme-2", account=self.account, resource_id=self.resource,
                            meter="network.egress", start=1790848800, end=1790852400, quantity=Decimal("0.125"),
                            unit="GB"),
            ][done:]
            if records:
                yield PullBatch(records=tuple(records), checkpoint={"cursor": done + len(records)})


    @hookimpl
    def hub_register_source_types():
        return [SourceType(name=TYPE_NAME, description="Usage from the ACME cloud API.",
                           config_schema=SCHEMA, factory=AcmeSource)]
'''


def acme_dist(site: Path, *, type_name: str = "acme", ep_name: str = "acme") -> Path:
    """acme-hub-plugin 1.2.3, whose plugin registers the source type ``type_name``."""
    source = textwrap.dedent(ACME_PLUGIN).replace("TYPE_NAME", repr(type_name))
    return install_dist(site, "acme-hub-plugin", "1.2.3", {"acme_hub_plugin/__init__.py": source},
                        {ep_name: "acme_hub_plugin"})


BROKEN_PLUGIN = '''
    """A plugin whose dependency is missing."""

    raise ImportError("acme-sdk is not installed")
'''


def broken_dist(site: Path) -> Path:
    return install_dist(site, "broken-hub-plugin", "0.3.0", {"broken_hub_plugin.py": BROKEN_PLUGIN},
                        {"broken": "broken_hub_plugin"})


# --------------------------------------------------------------------------
# Discovery through the entry-point group


def test_the_bundled_csv_source_is_discovered_through_the_entry_point_group_like_any_plugin():
    host = build_host()
    registered = host.type_of("source", "csv")
    assert registered is not None
    assert registered.plugin.name == "csv"
    assert registered.plugin.distribution == HUB_DIST
    assert registered.plugin.version == HUB_VERSION
    assert registered.plugin.module == CSV_MODULE
    assert registered.kind == "source"
    assert registered.plugin in host.plugins
    assert host.failures == []
    # the host knows nothing of it otherwise: no entry points, no csv type
    assert build_host(entry_points=[]).type_of("source", "csv") is None


def test_a_third_party_distribution_on_sys_path_is_discovered_with_its_distribution_and_version(tmp_path, monkeypatch):
    site = acme_dist(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))

    host = build_host()

    registered = host.type_of("source", "acme")
    assert registered is not None
    assert registered.plugin.name == "acme"
    assert registered.plugin.distribution == "acme-hub-plugin"
    assert registered.plugin.version == "1.2.3"
    assert registered.plugin.module == "acme_hub_plugin"
    assert registered.type.description == "Usage from the ACME cloud API."
    assert host.type_of("source", "csv").plugin.distribution == HUB_DIST  # the bundled one still there
    assert host.names("source") == ["acme", "csv"]
    assert host.failures == []


def test_hub_plugins_lists_an_installed_third_party_type_with_its_distribution_and_version(tmp_path):
    site = acme_dist(tmp_path / "site")

    result = run_hub("plugins", site=site, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert rows["acme"] == ["acme", "source", "acme", "acme-hub-plugin", "1.2.3", "Usage from the ACME cloud API."]
    assert rows["csv"][:5] == ["csv", "source", "csv", HUB_DIST, HUB_VERSION]
    assert result.stderr == ""


def test_a_third_party_source_type_is_checked_and_pulled_by_the_hub_command(tmp_path):
    site = acme_dist(tmp_path / "site")
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(METERS_AND_ACCOUNTS + '\n[[sources]]\nname = "acme-cloud"\ntype = "acme"\naccount = "acme"\n')

    check = run_hub("--config", str(ws.config_path), "check", site=site, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "hub.toml: ok (2 meters, 2 accounts, 1 source, 0 exporters, 0 renderers)"

    pulled = run_hub("--config", str(ws.config_path), "pull", site=site, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == "acme-cloud: 2 imported, 0 updated, 0 quarantined"

    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.connect() as conn:
        stored = conn.execute(
            select(usage_records.c.source, usage_records.c.record_id, usage_records.c.account,
                   usage_records.c.resource_id, usage_records.c.meter, usage_records.c.start_s,
                   usage_records.c.end_s, usage_records.c.quantity, usage_records.c.unit, usage_records.c.labels)
            .order_by(usage_records.c.record_id)
        ).all()
        state = conn.scalar(select(checkpoints.c.state).where(checkpoints.c.source == "acme-cloud"))
    engine.dispose()
    assert [tuple(r) for r in stored] == [
        ("acme-cloud", "acme-1", "acme", "vm-acme-1", "compute.vcpu", OCT_1_10H, OCT_1_10H + 762, "2", "vCPU",
         '{"zone":"eu-1"}'),
        ("acme-cloud", "acme-2", "acme", "vm-acme-1", "network.egress", OCT_1_10H, OCT_1_10H + 3600, "0.125", "GB",
         "{}"),
    ]
    assert json.loads(state) == {"cursor": 2}


def test_a_third_party_source_type_whose_options_break_its_schema_fails_hub_check(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(acme_dist(tmp_path / "site")))
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(METERS_AND_ACCOUNTS + '\n[[sources]]\nname = "acme-cloud"\ntype = "acme"\nregion = "eu"\n')

    result = ws.hub("check")

    assert result.exit_code == 2, result.output
    assert "account" in result.stderr
    assert "region" in result.stderr


# --------------------------------------------------------------------------
# Duplicate type names


def test_two_plugins_registering_the_same_source_type_stop_the_host_naming_both_distributions(tmp_path, monkeypatch):
    site = acme_dist(tmp_path / "site", type_name="csv")
    monkeypatch.syspath_prepend(str(site))

    with pytest.raises(PluginConflict) as raised:
        build_host()

    message = str(raised.value)
    assert "source type 'csv'" in message
    assert "plugin 'csv'" in message
    assert "plugin 'acme'" in message
    assert f"{HUB_DIST} {HUB_VERSION}" in message
    assert "acme-hub-plugin 1.2.3" in message


@pytest.mark.parametrize("command", ["plugins", "check"])
def test_a_duplicate_type_name_makes_hub_commands_exit_2_naming_both_distributions(tmp_path, command):
    site = acme_dist(tmp_path / "site", type_name="csv")
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(METERS_AND_ACCOUNTS)

    result = run_hub("--config", str(ws.config_path), command, site=site, cwd=tmp_path)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "source type 'csv' is registered twice" in result.stderr
    assert "plugin 'csv'" in result.stderr and "plugin 'acme'" in result.stderr
    assert f"{HUB_DIST} {HUB_VERSION}" in result.stderr
    assert "acme-hub-plugin 1.2.3" in result.stderr


def test_a_third_party_entry_point_named_like_a_bundled_one_is_not_silently_dropped(tmp_path, monkeypatch):
    # acme-hub-plugin publishes its csv replacement as `csv = acme_hub_plugin`:
    # another distribution's entry point of the same name, not the bundled
    # one seen twice. Both register source type "csv": a conflict.
    site = acme_dist(tmp_path / "site", type_name="csv", ep_name="csv")
    monkeypatch.syspath_prepend(str(site))

    try:
        host = build_host()
    except PluginConflict as exc:
        message = str(exc)
    else:
        csv = host.type_of("source", "csv")
        pytest.fail(f"no PluginConflict: source type 'csv' is {csv and csv.plugin}; loaded plugins: {host.plugins}; "
                    f"failures: {host.failures}")
    assert f"{HUB_DIST} {HUB_VERSION}" in message
    assert "acme-hub-plugin 1.2.3" in message


# --------------------------------------------------------------------------
# Failures of plugin code are data


def test_a_plugin_that_fails_to_import_is_recorded_and_the_others_still_load(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_dist(tmp_path / "site")))

    host = build_host()

    assert host.failures == [PluginFailure(plugin="broken", hook="load", message="ImportError: acme-sdk is not installed")]
    assert sorted(p.name for p in host.plugins) == BUNDLED
    assert "csv" in BUNDLED
    assert host.type_of("source", "csv").plugin.distribution == HUB_DIST


def test_hub_plugins_lists_the_loaded_types_and_reports_a_plugin_that_failed_to_import(tmp_path):
    site = broken_dist(tmp_path / "site")

    result = run_hub("plugins", site=site, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert sorted(table_rows(result.stdout)) == BUNDLED  # one type each
    assert result.stderr.splitlines() == ["failed: plugin 'broken' in load: ImportError: acme-sdk is not installed"]


ODD_PLUGIN = '''
    from hub.hookspecs import hookimpl
    from hub.plugin_types import SourceType


    class Nothing:
        def __init__(self, config):
            pass

        def pull(self, checkpoint, ctx):
            return iter(())


    @hookimpl
    def hub_register_source_types():
        return [SourceType(name="odd", description="ACME usage [beta], see docs[1]", config_schema={},
                           factory=Nothing)]
'''


def test_hub_plugins_prints_plugin_text_verbatim_never_as_console_markup(tmp_path):
    # Descriptions and failure messages come from plugin code: brackets in
    # them are text, not styles for the terminal.
    site = install_dist(tmp_path / "site", "odd-hub-plugin", "2.0.0", {
        "odd_hub_plugin/__init__.py": ODD_PLUGIN,
        "odd_hub_plugin/extra.py": 'raise ImportError("install it with: pip install \'odd-hub-plugin[api]\'")\n',
    }, {"odd": "odd_hub_plugin", "odd_api": "odd_hub_plugin.extra"})

    result = run_hub("plugins", site=site, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    shown = (table_rows(result.stdout)["odd"][5], result.stderr.splitlines())
    assert shown == (
        "ACME usage [beta], see docs[1]",
        ["failed: plugin 'odd_api' in load: ImportError: install it with: pip install 'odd-hub-plugin[api]'"],
    )


def _source_type(name: str, factory=lambda config: None) -> SourceType:  # type: ignore[no-untyped-def]
    return SourceType(name=name, description=f"the {name} type", config_schema={}, factory=factory)


def _plugin(**hooks) -> types.SimpleNamespace:  # type: ignore[no-untyped-def]
    """A module-like plugin object whose hooks are the given functions."""
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def test_a_plugin_whose_registration_hook_raises_is_recorded_and_the_others_are_unaffected():
    def explode():
        raise RuntimeError("cannot reach the licence server")

    host = build_host(extra_plugins=[
        ("exploding", _plugin(hub_register_source_types=explode)),
        ("fine", _plugin(hub_register_source_types=lambda: [_source_type("fine")])),
    ])

    assert host.failures == [PluginFailure("exploding", "hub_register_source_types",
                                           "RuntimeError: cannot reach the licence server")]
    assert host.names("source") == ["csv", "fine"]
    assert host.type_of("source", "fine").plugin.name == "fine"


def test_a_registration_hook_that_raises_while_its_result_is_iterated_is_recorded_too():
    def lazily_exploding():  # a generator: its code runs when the host iterates it
        yield _source_type("half")
        raise RuntimeError("cannot reach the licence server")

    host = build_host(extra_plugins=[
        ("lazy", _plugin(hub_register_source_types=lazily_exploding)),
        ("fine", _plugin(hub_register_source_types=lambda: [_source_type("fine")])),
    ])

    assert [(f.plugin, f.hook, f.message) for f in host.failures] == [
        ("lazy", "hub_register_source_types", "RuntimeError: cannot reach the licence server")
    ]
    assert host.type_of("source", "csv") is not None
    assert host.type_of("source", "fine") is not None


def test_a_registration_hook_returning_the_wrong_record_type_is_recorded_naming_the_expected_type():
    wrong = ExporterType(name="mailer", description="an exporter", config_schema={}, factory=lambda c: None)
    host = build_host(extra_plugins=[
        ("confused", _plugin(hub_register_source_types=lambda: [wrong, {"name": "dicty"}, _source_type("right")])),
        ("fine", _plugin(hub_register_source_types=lambda: [_source_type("fine")])),
    ])

    assert [(f.plugin, f.hook) for f in host.failures] == [("confused", "hub_register_source_types")] * 2
    assert all("SourceType" in f.message for f in host.failures)
    assert "dicty" in host.failures[1].message
    assert host.type_of("exporter", "mailer") is None
    assert host.names("source") == ["csv", "fine", "right"]


def test_a_registration_hook_returning_one_record_instead_of_a_list_is_recorded_not_fatal():
    host = build_host(extra_plugins=[
        ("forgetful", _plugin(hub_register_source_types=lambda: _source_type("single"))),
        ("fine", _plugin(hub_register_source_types=lambda: [_source_type("fine")])),
    ])

    assert [(f.plugin, f.hook) for f in host.failures] == [("forgetful", "hub_register_source_types")]
    assert "SourceType" in host.failures[0].message
    assert host.type_of("source", "csv") is not None
    assert host.type_of("source", "fine") is not None


# --------------------------------------------------------------------------
# Failing source instances during a pull


def _record(record_id: str, start: int = OCT_1_10H) -> UsageRecord:
    return UsageRecord(record_id=record_id, account="acme", resource_id="vm-1", meter="compute.vcpu",
                       start=start, end=start + 60, quantity=Decimal("1.5"), unit="vCPU")


class _Good:
    def __init__(self, config: InstanceConfig) -> None:
        self.config = config

    def pull(self, checkpoint, ctx):  # type: ignore[no-untyped-def]
        yield PullBatch(records=(_record("g-1"), _record("g-2", OCT_1_10H + 60)), checkpoint={"cursor": 2})


class _Midway:
    def __init__(self, config: InstanceConfig) -> None:
        pass

    def pull(self, checkpoint, ctx):  # type: ignore[no-untyped-def]
        yield PullBatch(records=(_record("m-1"),), checkpoint={"cursor": 1})
        raise ConnectionError("the feed went away")


def _no_credentials(config: InstanceConfig):  # type: ignore[no-untyped-def]
    raise ValueError("no credentials for " + config.name)


class _FlakySources:
    """An in-process plugin (a class instance) with three source types."""

    @hookimpl
    def hub_register_source_types(self) -> list[SourceType]:
        return [_source_type("good", _Good), _source_type("midway", _Midway), _source_type("nofactory", _no_credentials)]


def test_a_failing_factory_or_a_pull_failing_midway_is_recorded_and_the_other_sources_still_import(tmp_path):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(METERS_AND_ACCOUNTS + textwrap.dedent("""
        [[sources]]
        name = "half"
        type = "midway"

        [[sources]]
        name = "locked"
        type = "nofactory"

        [[sources]]
        name = "steady"
        type = "good"
    """))
    host = build_host(extra_plugins=[("flaky", _FlakySources())])
    config = load_config(ws.config_path, host)
    engine = open_store(config.hub.database, config.base_dir)

    results = {r.source: r for r in pull(config, host, engine)}

    assert results["half"].failure == PluginFailure("half", "pull", "ConnectionError: the feed went away")
    assert results["half"].counts.imported == 1
    assert results["locked"].failure == PluginFailure("locked", "factory", "ValueError: no credentials for locked")
    assert results["locked"].counts.imported == 0
    assert results["steady"].ok
    assert results["steady"].counts.imported == 2
    assert host.failures == [results["half"].failure, results["locked"].failure]

    with engine.connect() as conn:
        stored = conn.execute(select(usage_records.c.source, usage_records.c.record_id, usage_records.c.quantity,
                                     usage_records.c.start_s).order_by(usage_records.c.record_id)).all()
        saved = {s: json.loads(state) for s, state in conn.execute(select(checkpoints.c.source, checkpoints.c.state))}
        runs = {s: (status, error) for s, status, error in conn.execute(
            select(pull_runs.c.source, pull_runs.c.status, pull_runs.c.error))}
    engine.dispose()
    assert [tuple(r) for r in stored] == [
        ("steady", "g-1", "1.5", OCT_1_10H),
        ("steady", "g-2", "1.5", OCT_1_10H + 60),
        ("half", "m-1", "1.5", OCT_1_10H),
    ]
    assert saved == {"half": {"cursor": 1}, "steady": {"cursor": 2}}
    assert runs == {
        "half": ("failed", "ConnectionError: the feed went away"),
        "locked": ("failed", "ValueError: no credentials for locked"),
        "steady": ("ok", None),
    }


# --------------------------------------------------------------------------
# The host is built, never imported


def test_importing_the_hub_builds_no_plugin_manager_and_loads_no_plugin():
    code = textwrap.dedent("""
        import gc, json, sys
        import pluggy
        import hub, hub.hookspecs, hub.host, hub.plugin_types, hub.config, hub.ingest
        import hub.cli.main, hub.cli.commands, hub.cli.demo
        managers = [o for o in gc.get_objects() if isinstance(o, pluggy.PluginManager)]
        attributes = [f"{n}.{a}" for n, m in list(sys.modules.items()) if n == "hub" or n.startswith("hub.")
                      for a, v in vars(m).items() if isinstance(v, pluggy.PluginManager)]
        plugins = sorted(n for n in sys.modules if n.startswith("hub_plugins."))
        print(json.dumps({"managers": len(managers), "attributes": attributes, "plugins": plugins}))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"managers": 0, "attributes": [], "plugins": []}


def test_hub_host_has_no_module_level_plugin_manager_and_each_build_is_independent():
    assert [name for name, value in vars(hub.host).items() if isinstance(value, pluggy.PluginManager)] == []

    first = build_host(extra_plugins=[("only-here", _plugin(hub_register_source_types=lambda: [_source_type("x")]))])
    second = build_host()

    assert first is not second
    assert first.pm is not second.pm
    assert first.type_of("source", "x") is not None
    assert second.type_of("source", "x") is None
    assert second.pm.get_plugin("only-here") is None
    first.failures.append(PluginFailure("p", "h", "m"))
    assert second.failures == []


# --------------------------------------------------------------------------
# The plugin author's contract


def test_every_hookspec_is_named_hub_something_and_documented():
    specs = {name: fn for name, fn in vars(hookspecs).items()
             if inspect.isfunction(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")}
    assert specs, "no hookspec found"
    for name, fn in specs.items():
        assert name.startswith("hub_"), name
        assert (inspect.getdoc(fn) or "").strip(), f"{name} has no docstring"
    # the manager knows exactly these hooks
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    assert {h for h in vars(pm.hook) if not h.startswith("_")} == set(specs)


def test_a_secret_never_shows_its_value():
    secret = Secret("ACME_TOKEN", "s3cr3t-value")
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret, ""), "%s" % secret,
                  repr([secret]), repr({"token": secret})):
        assert "s3cr3t-value" not in shown
        assert "ACME_TOKEN" in shown
    assert secret.reveal() == "s3cr3t-value"


def test_instance_config_secret_reads_the_named_variable_and_names_it_when_unset(tmp_path, monkeypatch):
    config = InstanceConfig(name="acme-cloud", type="acme", options={"token_env": "HUB_TEST_ACME_TOKEN"},
                            base_dir=tmp_path)

    monkeypatch.delenv("HUB_TEST_ACME_TOKEN", raising=False)
    with pytest.raises(KeyError, match="HUB_TEST_ACME_TOKEN"):
        config.secret("token")

    monkeypatch.setenv("HUB_TEST_ACME_TOKEN", "t0ken")
    secret = config.secret("token")
    assert secret.env == "HUB_TEST_ACME_TOKEN"
    assert secret.reveal() == "t0ken"
    assert "t0ken" not in repr(secret)


class _Sloppy:
    """Yields what a careless third-party source might: floats, too many
    decimals, float times, and finally a batch the store cannot take."""

    def __init__(self, config: InstanceConfig) -> None:
        pass

    def pull(self, checkpoint, ctx):  # type: ignore[no-untyped-def]
        good = _record("s-ok")
        yield PullBatch(records=(
            good,
            good._replace(record_id="s-float", quantity=1.5),
            good._replace(record_id="s-decimals", quantity=Decimal("0.0000000001")),
            good._replace(record_id="s-time", start=float(OCT_1_10H)),
            good._replace(record_id="s-backwards", end=OCT_1_10H - 1),
        ), checkpoint={"cursor": 1})
        yield PullBatch(records=(good._replace(record_id="s-labels", labels=["not", "a", "mapping"]),),
                        checkpoint={"cursor": 2})


def test_records_a_source_cannot_have_meant_are_quarantined_by_the_hub_and_a_batch_it_cannot_store_stops_that_source(
        tmp_path):
    ws = Workspace(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    ws.config(METERS_AND_ACCOUNTS + textwrap.dedent("""
        [[sources]]
        name = "sloppy"
        type = "sloppy"

        [[sources]]
        name = "steady"
        type = "good"
    """))
    sloppy = _plugin(hub_register_source_types=lambda: [_source_type("sloppy", _Sloppy)])
    host = build_host(extra_plugins=[("flaky", _FlakySources()), ("sloppy", sloppy)])
    config = load_config(ws.config_path, host)
    engine = open_store(config.hub.database, config.base_dir)

    results = {r.source: r for r in pull(config, host, engine)}

    assert results["sloppy"].counts.imported == 1
    assert results["sloppy"].counts.quarantined == 4
    assert results["sloppy"].failure.hook == "store"
    assert results["sloppy"].failure.plugin == "sloppy"
    assert results["steady"].ok and results["steady"].counts.imported == 2
    with engine.connect() as conn:
        errors = {rid: json.loads(e) for rid, e in conn.execute(select(quarantine.c.record_id, quarantine.c.errors))}
        saved = {s: json.loads(state) for s, state in conn.execute(select(checkpoints.c.source, checkpoints.c.state))}
    engine.dispose()
    assert errors == {
        "s-float": ["quantity: must be a decimal.Decimal, not float"],
        "s-decimals": ["quantity: 1E-10 has more than 9 decimal places"],
        "s-time": ["start: must be whole epoch seconds (int), not float"],
        "s-backwards": ["end: must be whole epoch seconds (int) not before start, or None while running"],
    }
    assert saved["sloppy"] == {"cursor": 1}  # the batch that failed to store moved nothing
