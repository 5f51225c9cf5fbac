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
