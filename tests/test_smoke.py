from tests.conftest import HEADER


def test_a_csv_file_pulled_twice_is_imported_once(workspace):
    workspace.write("usage/a.csv", HEADER + "r1,acme,vm-1,compute.vcpu,2026-10-01T10:00:00Z,2026-10-01T10:12:42Z,2\n")
    first = workspace.hub("pull")
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "files: 1 imported, 0 updated, 0 quarantined"
    second = workspace.hub("pull")
    assert second.stdout.strip() == "files: 0 imported, 0 updated, 0 quarantined"
    usage = workspace.json("usage", "--period", "2026-10", "--account", "acme")
    assert usage == [{"account": "acme", "meter": "compute.vcpu", "aggregation": "time_weighted", "unit": "vCPU",
                      "period": "2026-10", "records": 1, "seconds": 762, "quantity": "1524"}]


def test_the_declared_head_revision_is_alembics_head():
    from alembic.script import ScriptDirectory

    from hub.store.migrations import HEAD
    from hub.store.db import _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD


def test_a_new_store_is_migrated_on_start_and_a_current_one_is_not_touched(tmp_path):
    from hub.store.migrations import HEAD
    from hub.store.db import current_revision, open_store

    engine = open_store("sqlite:///hub.db", tmp_path)
    assert (tmp_path / "hub.db").exists()
    assert current_revision(engine) == HEAD
    assert current_revision(open_store("sqlite:///hub.db", tmp_path)) == HEAD


def test_the_repository_hub_toml_and_config_are_the_starter_that_hub_init_writes():
    from importlib import resources
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    template = resources.files("hub") / "templates" / "init"
    for rel in ("hub.toml", "config/catalog.toml", "config/accounts.toml"):
        assert (root / rel).read_text("utf-8") == template.joinpath(*rel.split("/")).read_text("utf-8"), rel
