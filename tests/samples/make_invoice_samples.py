"""Issue the sample invoices the renderer tests read (tests/samples/invoices/).

Each sample is an invoice (or credit note) the hub issued through its real
pipeline (pull, rate, close, credit note), saved as ``hub invoices show
NUMBER --json`` prints it. ``test_invoice_samples`` checks that the files
are what the hub issues today; after a deliberate change run::

    python3 tests/samples/make_invoice_samples.py

and review the diff.
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
from pathlib import Path

from click.testing import CliRunner

HERE = Path(__file__).parent
OUT = HERE / "invoices"
HEADER = "record_id,account,resource_id,meter,start,end,quantity\n"

CONFIG = """
[hub]
database = "sqlite:///hub.db"
currency = "EUR"

[[sources]]
name = "files"
type = "csv"
path = "usage/*.csv"

[seller]
name = "Nimbus Cloud GmbH"
country = "DE"
vat_id = "DE136695976"
email = "billing@nimbus.example"
peppol_id = "9930:DE136695976"
address = { street = "Hafenstrasse 1", city = "Hamburg", postal_code = "20457" }
iban = "DE89 3704 0044 0532 0130 00"
bic = "COBADEFFXXX"
phone = "+49 40 123456-0"

[tax.rates]
DE = "19"
FR = "20"
NL = "21"

[invoicing]
payment_terms_days = 30
locale = "en"

[[meters]]
name = "compute.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[meters]]
name = "compute.memory"
aggregation = "time_weighted"
unit = "GiB"

[[meters]]
name = "network.egress"
aggregation = "sum"
unit = "GB"

[[products]]
name = "vcpu"
description = "Virtual CPU"
meter = "compute.vcpu"
per = "second"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "memory"
description = "Memory"
meter = "compute.memory"
per = "hour"
price = { model = "graduated", tiers = [ { up_to = "1000", unit_price = "0.0055" }, { unit_price = "0.0045" } ] }

[[meters]]
name = "batch.vcpu"
aggregation = "time_weighted"
unit = "vCPU"

[[products]]
name = "batch"
description = "Batch job vCPU"
meter = "batch.vcpu"
per = "second"
itemize = "resource"
price = { model = "per_unit", unit_price = "0.0000115" }

[[products]]
name = "egress"
description = "Internet egress"
meter = "network.egress"
per = "unit"
free = "10"
price = { model = "per_unit", unit_price = "0.08" }

[[accounts]]
id = "acme"
name = "ACME Maschinenbau GmbH"
country = "DE"
vat_id = "DE811128135"
email = "ap@acme.example"
locale = "de"
address = { street = "Industriestrasse 5", city = "Stuttgart", postal_code = "70565" }

[[accounts]]
id = "globex"
name = "Globex SARL"
country = "FR"
vat_id = "FR40303265045"
email = "compta@globex.example"
timezone = "Europe/Paris"
locale = "fr"
peppol_id = "9957:FR40303265045"
address = { street = "12 rue de la Paix", city = "Paris", postal_code = "75002" }

[[accounts]]
id = "umbrella"
name = "Umbrella <script>alert(1)</script> & Sons"
country = "NL"
email = "jan@umbrella.example"
address = { street = "Damrak 1", city = "Amsterdam", postal_code = "1012 LG" }

[[accounts]]
id = "initech"
name = "Initech Inc."
country = "US"
email = "billing@initech.example"
address = { street = "4120 Freidrich Lane", city = "Austin", postal_code = "78744", region = "TX" }

[[accounts]]
id = "charity"
name = "Kinderhilfe e.V."
country = "DE"
tax_exempt = true
exemption_reason = "Exempt under section 4 no. 18 UStG"
address = { street = "Lindenallee 3", city = "Berlin", postal_code = "10115" }

[[accounts]]
id = "enterprise"
name = "Enterprise AG"
country = "DE"
vat_id = "DE129273398"
address = { street = "Konzernplatz 1", city = "Munich", postal_code = "80331" }

[[accounts]]
id = "ent-web"
name = "Web shop"
parent = "enterprise"

[[accounts]]
id = "ent-data"
name = "Data platform"
parent = "enterprise"

[[accounts]]
id = "bigco"
name = "BigCo Hosting GmbH"
country = "DE"
vat_id = "DE136695976"
address = { street = "Am Markt 9", city = "Cologne", postal_code = "50667" }
prices = { batch = { model = "per_unit", unit_price = "0.000010" } }

[[credits]]
account = "acme"
amount = "5.00"
kind = "promotional"
description = "Welcome credit"

[[credits]]
account = "globex"
amount = "20.00"
kind = "prepaid"
description = "Prepaid balance"

[[discounts]]
account = "acme"
percent = "10"
product = "vcpu"
description = "Contract discount on vCPU"

[[discounts]]
account = "initech"
amount = "1.00"
description = "Loyalty discount"
"""


def _usage() -> str:
    rows = [
        "a1,acme,vm-1,compute.vcpu,2025-10-01T00:00:00Z,2025-10-11T00:00:00Z,4",
        "a2,acme,vm-1,compute.memory,2025-10-01T00:00:00Z,2025-10-11T00:00:00Z,16",
        "a3,acme,vm-1,network.egress,2025-10-05T00:00:00Z,2025-10-05T00:00:00Z,42.5",
        "a4,acme,job-7,compute.vcpu,2025-10-12T10:00:00Z,2025-10-12T10:12:42Z,1",
        "g1,globex,vm-2,compute.vcpu,2025-10-01T00:00:00Z,2025-10-31T00:00:00Z,2",
        "g2,globex,vm-2,compute.memory,2025-10-01T00:00:00Z,2025-10-31T00:00:00Z,8",
        "u1,umbrella,vm-3,compute.vcpu,2025-10-03T00:00:00Z,2025-10-04T00:00:00Z,1",
        "i1,initech,vm-4,compute.vcpu,2025-10-01T00:00:00Z,2025-10-21T00:00:00Z,8",
        "i2,initech,vm-4,network.egress,2025-10-09T00:00:00Z,2025-10-09T00:00:00Z,310",
        "c1,charity,vm-5,compute.vcpu,2025-10-01T00:00:00Z,2025-10-16T00:00:00Z,2",
        "w1,ent-web,vm-6,compute.vcpu,2025-10-01T00:00:00Z,2025-10-31T00:00:00Z,4",
        "w2,ent-web,vm-6,network.egress,2025-10-20T00:00:00Z,2025-10-20T00:00:00Z,120",
        "d1,ent-data,vm-7,compute.vcpu,2025-10-01T00:00:00Z,2025-10-08T00:00:00Z,16",
        "d2,ent-data,vm-7,compute.memory,2025-10-01T00:00:00Z,2025-10-08T00:00:00Z,64",
        "d3,ent-data,vm-8,compute.vcpu,2025-10-10T00:00:00Z,2025-10-10T06:30:00Z,2",
        "d4,ent-data,vm-8,compute.vcpu,2025-10-12T00:00:00Z,2025-10-12T01:00:00Z,2",
    ]
    # bigco: 240 short jobs, one line each (itemize = resource): a long
    # invoice that breaks across pages.
    for i in range(240):
        day, hour = 1 + i // 10, i % 10
        rows.append(f"b{i},bigco,job-{i:03d},compute.vcpu,2025-10-{day:02d}T{hour:02d}:00:00Z,"
                    f"2025-10-{day:02d}T{hour:02d}:{17 + i % 40:02d}:{i % 60:02d}Z,{1 + i % 8}".replace("compute.vcpu", "batch.vcpu"))
    return HEADER + "\n".join(rows) + "\n"


#: sample name -> the invoice number it is, and why it is here
SAMPLES = {
    "domestic-vat-discount-credit": "INV-2025-000001",   # acme: DE->DE 19 %, 10 % on vCPU, promotional credit
    "reverse-charge-prepaid-peppol": "INV-2025-000002",  # globex: FR B2B, prepaid credit, both Peppol ids
    "eu-b2c-buyer-rate": "INV-2025-000003",              # umbrella: NL consumer at 21 %, a name to escape
    "export-fixed-discount": "INV-2025-000004",          # initech: US, fixed discount, free egress allowance
    "exempt": "INV-2025-000005",                         # charity: exempt with its reason
    "enterprise-parent": "INV-2025-000006",              # enterprise: two children's lines
    "long-itemized": "INV-2025-000007",                  # bigco: 240 lines, a price override
    "credit-note": "CN-2025-000001",                     # credits two lines of acme's invoice
}


def issue(workdir: Path) -> dict[str, dict]:
    """Issue the samples in ``workdir``; their JSON by sample name."""
    from hub.cli.main import register_commands

    (workdir / "usage").mkdir(parents=True, exist_ok=True)
    (workdir / "hub.toml").write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    (workdir / "usage" / "2025-10.csv").write_text(_usage(), encoding="utf-8")
    runner = CliRunner()

    def hub(*args: str) -> str:
        result = runner.invoke(register_commands(), ["--config", str(workdir / "hub.toml"), *args], catch_exceptions=False)
        if result.exit_code != 0:
            raise RuntimeError(f"hub {' '.join(args)} exited {result.exit_code}: {result.output}")
        return result.stdout

    hub("pull")
    hub("invoice", "--period", "2025-10", "--issue-date", "2025-11-03")
    hub("credit-note", "INV-2025-000001", "--lines", "1,2", "--reason", "vCPU billed twice for vm-1 on 2025-10-01",
        "--issue-date", "2025-11-10")
    return {name: json.loads(hub("invoices", "show", number, "--json")) for name, number in SAMPLES.items()}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        docs = issue(Path(tmp))
    OUT.mkdir(exist_ok=True)
    for name, doc in docs.items():
        (OUT / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(docs)} samples to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
