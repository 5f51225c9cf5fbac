"""`hub demo`: the README's main job."""

from click.testing import CliRunner

import mailbox

from hub.cli.main import register_commands

cli = register_commands()


def test_the_demo_builds_a_workspace_pulls_its_month_and_shows_its_usage(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "pulled cloud: 4190 imported, 0 updated, 0 quarantined"
    assert "usage for 2026-10:" in lines
    kiwi_cpu = next(line.split() for line in lines if line.startswith("kiwi") and "compute.vcpu" in line)
    # 11,701,752 vCPU-s, shown in vCPU-h as the documents show it
    assert kiwi_cpu == ["kiwi", "compute.vcpu", "2", "3471519", "3250.487", "vCPU-h"]
    assert (tmp_path / "d" / "usage" / "2026-10.csv").exists()


def test_the_demo_issues_renders_validates_and_mails_last_months_invoices(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d"), "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    numbers = [f"INV-2026-00000{i}" for i in range(1, 5)]
    docs = sorted(p.name for p in (tmp_path / "d" / "documents").iterdir())
    assert docs == sorted(f"{n}{suffix}" for n in numbers for suffix in (".html", ".pdf", "-facturx.pdf", ".xml"))
    assert f"documents (pdf, facturx, html, ubl) in {tmp_path / 'd'}/documents/:" in result.stdout
    box = mailbox.Maildir(tmp_path / "d" / "mail", create=False)
    subjects = sorted(m["Subject"] for m in box)
    assert subjects == [f"Invoice {n} from Nimbus Cloud GmbH" for n in numbers]
    assert f"4 invoice e-mails delivered into {tmp_path / 'd'}/mail/new/" in result.stdout


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
