"""Invoicing: the pure arithmetic of an invoice.

No database, no configuration, no clock: :mod:`hub.invoicing.tax` decides
the tax of an invoice and checks VAT ids (python-stdnum, offline);
:mod:`hub.invoicing.inputs` holds the checked inputs (lines, discounts,
credit grants); :mod:`hub.invoicing.compute` turns them and the tax into
every figure of the invoice, exact sums of parts each rounded once
(docs/billing-rules.md, Lines, Discounts, Tax, Credits). The readings
chosen where the rules leave room are in those modules' docstrings.

This package re-exports only that arithmetic, and must stay so: the
configuration loader imports :mod:`hub.invoicing.tax`, which runs this
``__init__`` first, so anything here that reached the configuration, the
store or the close stage would be an import cycle. The close stage (the
store, numbers, the credit ledger, payments, credit notes) is the package
:mod:`hub.closing`, above this one.

    tax = determine_tax(Seller("DE", "DE136695976"), Buyer("FR"), {"DE": "19", "FR": "20"})
    invoice = compute_invoice(lines, currency="EUR", period_start=p0, period_end=p1,
                              tax=tax, discounts=discounts, grants=grants, rounding="half_up")
    invoice.to_json()             # the figures under the invoice JSON contract's keys
    carry_over(grants, invoice)   # the grants with the balances left for the next invoice
"""

from hub.invoicing.compute import (
    Allowance,
    ComputedInvoice,
    CreditConsumption,
    Tax,
    carry_over,
    compute_invoice,
)
from hub.invoicing.inputs import (
    CREDIT_KINDS,
    PREPAID,
    PROMOTIONAL,
    CreditGrant,
    Discount,
    Line,
    overlaps,
)
from hub.invoicing.tax import (
    EU_COUNTRIES,
    EXEMPT,
    EXPORT,
    EXPORT_REASON,
    REVERSE_CHARGE,
    REVERSE_CHARGE_REASON,
    STANDARD,
    Buyer,
    InvalidVatId,
    MissingTaxRate,
    Seller,
    TaxTreatment,
    country_code,
    determine_tax,
    is_eu,
    is_valid_vat_id,
    validate_vat_id,
    vat_id_error,
    vat_prefix,
)
from hub.money import money, money_str

__all__ = [
    "CREDIT_KINDS",
    "EU_COUNTRIES",
    "EXEMPT",
    "EXPORT",
    "EXPORT_REASON",
    "PREPAID",
    "PROMOTIONAL",
    "REVERSE_CHARGE",
    "REVERSE_CHARGE_REASON",
    "STANDARD",
    "Allowance",
    "Buyer",
    "ComputedInvoice",
    "CreditConsumption",
    "CreditGrant",
    "Discount",
    "InvalidVatId",
    "Line",
    "MissingTaxRate",
    "Seller",
    "Tax",
    "TaxTreatment",
    "carry_over",
    "compute_invoice",
    "country_code",
    "determine_tax",
    "is_eu",
    "is_valid_vat_id",
    "money",
    "money_str",
    "overlaps",
    "validate_vat_id",
    "vat_id_error",
    "vat_prefix",
]
