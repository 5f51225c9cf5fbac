"""Invoicing: the pure arithmetic of an invoice (issue #4).

No database, no configuration, no clock: :mod:`hub.invoicing.tax` decides
the tax of an invoice and checks VAT ids (python-stdnum, offline);
:mod:`hub.invoicing.compute` turns lines, discounts, credit grants and the
tax into every figure of the invoice, exact sums of parts each rounded once
(../shared/BILLING_RULES.md, Lines, Discounts, Tax, Credits). The readings
chosen where the rules leave room are in those two modules' docstrings.

    tax = determine_tax(Seller("DE", "DE136695976"), Buyer("FR"), {"DE": "19", "FR": "20"})
    invoice = compute_invoice(lines, currency="EUR", period_start=p0, period_end=p1,
                              tax=tax, discounts=discounts, grants=grants, rounding="half_up")
    invoice.to_json()             # the figures under the invoice JSON contract's keys
    carry_over(grants, invoice)   # the grants with the balances left for the next invoice
"""

from hub.invoicing.compute import (
    CREDIT_KINDS,
    PREPAID,
    PROMOTIONAL,
    Allowance,
    ComputedInvoice,
    CreditConsumption,
    CreditGrant,
    Discount,
    Line,
    Tax,
    carry_over,
    compute_invoice,
    money,
    money_str,
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

__all__ = [
    "CREDIT_KINDS", "PREPAID", "PROMOTIONAL", "Allowance", "ComputedInvoice", "CreditConsumption",
    "CreditGrant", "Discount", "Line", "Tax", "carry_over", "compute_invoice", "money", "money_str",
    "overlaps",
    "EU_COUNTRIES", "EXEMPT", "EXPORT", "EXPORT_REASON", "REVERSE_CHARGE", "REVERSE_CHARGE_REASON",
    "STANDARD", "Buyer", "InvalidVatId", "MissingTaxRate", "Seller", "TaxTreatment", "country_code",
    "determine_tax", "is_eu", "is_valid_vat_id", "validate_vat_id", "vat_id_error", "vat_prefix",
]
