"""`hub demo`: the README's main job."""

from click.testing import CliRunner

from hub.cli import commands, demo  # noqa: F401 - registers the subcommands
from hub.cli.main import cli


def test_the_demo_builds_a_workspace_pulls_its_month_and_shows_its_usage(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "pulled cloud: 4190 imported, 0 updated, 0 quarantined"
    assert "usage for 2026-10:" in lines
    kiwi_cpu = next(line.split() for line in lines if line.startswith("kiwi") and "compute.vcpu" in line)
    assert kiwi_cpu == ["kiwi", "compute.vcpu", "2", "3471519", "11701752", "vCPU-s"]
    assert (tmp_path / "d" / "usage" / "2026-10.csv").exists()


def test_the_demo_run_twice_imports_nothing_new(tmp_path):
    args = ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-10"]
    CliRunner().invoke(cli, args)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[1] == "pulled cloud: 0 imported, 0 updated, 0 quarantined"


def test_the_demo_refuses_a_period_that_is_not_a_month(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-W43"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "hub: the demo generates a month: write --period 2026-10"
