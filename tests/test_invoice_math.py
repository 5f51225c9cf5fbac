"""hub.invoicing: the arithmetic of an invoice, to the cent.

Every expected figure is worked out by hand from docs/billing-rules.md
(Lines, Discounts, Tax, Credits); the working is in each test's comments.
Money is compared as Decimal strings, so "12.30" and "12.3" are told apart.
The VAT ids are real, check-digit-valid ids from python-stdnum's own
documentation (DE136695976, FR23334175221, EL094259216, IT00743110157...).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.invoicing import (
    EU_COUNTRIES,
    Buyer,
    ComputedInvoice,
    CreditGrant,
    Discount,
    InvalidVatId,
    Line,
    MissingTaxRate,
    Seller,
    Tax,
    TaxTreatment,
    carry_over,
    compute_invoice,
    determine_tax,
    is_eu,
    is_valid_vat_id,
    money_str,
    validate_vat_id,
    vat_id_error,
    vat_prefix,
)
from hub.money import Money

UTC = timezone.utc
SEP_START = datetime(2026, 9, 1, tzinfo=UTC)
OCT_START = datetime(2026, 10, 1, tzinfo=UTC)
OCT_MID = datetime(2026, 10, 15, tzinfo=UTC)
NOV_START = datetime(2026, 11, 1, tzinfo=UTC)
DEC_START = datetime(2026, 12, 1, tzinfo=UTC)

RATES = {"DE": "19", "FR": "20", "AT": "20", "IT": "22", "GR": "24", "NL": "21"}
SELLER = Seller("DE", "DE136695976")

DE_VAT = TaxTreatment("S", D("19"))
FR_VAT = TaxTreatment("S", D("20"))
REVERSE = TaxTreatment("AE", D("0"), "Reverse charge", "VATEX-EU-AE")


def line(amount: str, product: str = "vcpu", *, account: str = "acme", resource_id: str | None = None,
         quantity: str = "1", start: datetime = OCT_START, end: datetime = NOV_START, **kw) -> Line:
    return Line(product=product, account=account, quantity=D(quantity), unit=kw.pop("unit", "unit"),
                unit_price=kw.pop("unit_price", D(amount)), amount=D(amount), period_start=start,
                period_end=end, resource_id=resource_id, **kw)


def invoice(lines, tax=DE_VAT, *, currency="EUR", start=OCT_START, end=NOV_START, **kw) -> ComputedInvoice:
    return compute_invoice(lines, currency=currency, period_start=start, period_end=end, tax=tax, **kw)


def grant(gid: str, amount: str, kind: str = "prepaid", *, expires: datetime | None = datetime(2027, 12, 31, tzinfo=UTC),
          granted_at: datetime = SEP_START, remaining: str | None = None, currency: str = "EUR") -> CreditGrant:
    return CreditGrant(gid, D(amount), currency, kind, granted_at, expires,
                       None if remaining is None else D(remaining))


def figures(inv: ComputedInvoice) -> dict[str, str]:
    """The invoice's money figures as the JSON shows them."""
    j = inv.to_json()
    return {k: j[k] for k in ("subtotal", "discount_total", "promotional_credit", "taxable_amount", "total",
                              "prepaid_applied", "amount_due")} | {"tax": j["tax"]["amount"]}


# ==========================================================================
# Tax determination


def test_eu_member_states_come_from_stdnum_as_iso_codes():
    assert len(EU_COUNTRIES) == 27
    assert {"DE", "FR", "GR", "IE", "HR", "CY"} <= EU_COUNTRIES
    assert not {"EL", "XI", "GB", "CH", "NO", "US"} & EU_COUNTRIES
    assert is_eu("gr") and is_eu("EL")  # Greece: ISO GR, VAT prefix EL
    assert vat_prefix("GR") == "EL" and vat_prefix("de") == "DE"


def test_domestic_sale_is_standard_rated_at_the_seller_countrys_rate():
    assert determine_tax(SELLER, Buyer("DE"), RATES) == TaxTreatment("S", D("19"))


def test_domestic_b2b_sale_with_a_vat_id_is_still_standard_rated():
    assert determine_tax(SELLER, Buyer("DE", "DE136695976"), RATES) == TaxTreatment("S", D("19"))


def test_eu_b2b_with_a_valid_vat_id_is_reverse_charged():
    tax = determine_tax(SELLER, Buyer("FR", "FR23334175221"), RATES)
    assert (tax.category, tax.rate, tax.exemption_reason) == ("AE", D("0"), "Reverse charge")
    assert tax.exemption_code == "VATEX-EU-AE"


def test_greek_buyer_with_an_el_vat_id_is_reverse_charged():
    assert determine_tax(SELLER, Buyer("GR", "EL094259216"), RATES).category == "AE"
    assert determine_tax(SELLER, Buyer("GR", "EL 094 259 216"), RATES).category == "AE"


def test_eu_b2c_is_taxed_at_the_buyer_countrys_rate():
    assert determine_tax(SELLER, Buyer("FR"), RATES) == TaxTreatment("S", D("20"))
    assert determine_tax(SELLER, Buyer("IT", vat_id="  "), RATES) == TaxTreatment("S", D("22"))


def test_sale_outside_the_eu_is_an_export_at_rate_zero():
    tax = determine_tax(SELLER, Buyer("US"), RATES)
    assert tax == TaxTreatment("G", D("0"), "Export outside the EU", "VATEX-EU-G")


def test_a_non_eu_tax_number_is_not_checked_and_still_an_export():
    assert determine_tax(SELLER, Buyer("CH", "CHE-123.456.789 MWST"), RATES).category == "G"
    assert determine_tax(SELLER, Buyer("GB", "GB980780684"), RATES).category == "G"


def test_tax_exempt_account_gets_category_e_with_its_own_reason():
    buyer = Buyer("DE", tax_exempt=True, exemption_reason="Charitable body, § 4 Nr. 22 UStG")
    assert determine_tax(SELLER, buyer, RATES) == TaxTreatment("E", D("0"), "Charitable body, § 4 Nr. 22 UStG")
    # exempt wins wherever the account is, also with a VAT id elsewhere in the EU
    buyer = Buyer("FR", "FR23334175221", tax_exempt=True, exemption_reason="Diplomatic mission")
    assert determine_tax(SELLER, buyer, RATES).category == "E"


def test_tax_exempt_account_without_a_reason_is_refused():
    with pytest.raises(ValueError, match="exemption reason"):
        determine_tax(SELLER, Buyer("DE", tax_exempt=True), RATES)


def test_a_missing_standard_rate_names_the_country():
    with pytest.raises(MissingTaxRate, match="no standard tax rate is configured for ES"):
        determine_tax(SELLER, Buyer("ES"), RATES)


def test_rates_may_be_keyed_in_lower_case_and_are_never_floats():
    assert determine_tax(SELLER, Buyer("de"), {"de": "19"}).rate == D("19")
    with pytest.raises(TypeError, match="float"):
        determine_tax(SELLER, Buyer("DE"), {"DE": 19.0})


def test_a_seller_outside_the_eu_sells_domestically_but_not_across_borders():
    swiss = Seller("CH")
    assert determine_tax(swiss, Buyer("CH"), {"CH": "8.1"}) == TaxTreatment("S", D("8.1"))
    with pytest.raises(ValueError, match="not in the EU"):
        determine_tax(swiss, Buyer("DE"), RATES)


# ==========================================================================
# VAT ids


def test_valid_vat_ids_are_accepted_and_compacted():
    assert validate_vat_id("DE 136 695 976") == "DE136695976"
    assert validate_vat_id("FR 23 334 175 221", "FR") == "FR23334175221"
    assert validate_vat_id("IT00743110157", "it") == "IT00743110157"
    assert validate_vat_id("EL094259216", "GR") == "EL094259216"
    assert validate_vat_id("NL004495445B01") == "NL004495445B01"
    assert validate_vat_id("ATU13585627") == "ATU13585627"


def test_vat_id_with_wrong_check_digits_is_refused_with_a_clear_message():
    assert vat_id_error("IT00743110158") == "'IT00743110158' is not a valid VAT id: its check digits are wrong"
    assert not is_valid_vat_id("DE136695978")
    with pytest.raises(InvalidVatId, match=r"'DE136695978' is not a valid VAT id: its check digits are wrong"):
        validate_vat_id("DE136695978")


def test_an_invalid_vat_id_on_an_eu_account_stops_tax_determination():
    with pytest.raises(InvalidVatId, match="'FR23334175222' is not a valid VAT id: its check digits are wrong"):
        determine_tax(SELLER, Buyer("FR", "FR23334175222"), RATES)


@pytest.mark.parametrize(
    ("vat_id", "country", "message"),
    [
        ("DE13669597", None, "'DE13669597' is not a valid VAT id: it has the wrong number of characters for DE"),
        ("GR094259216", None, "'GR094259216' is not a valid VAT id: Greek VAT ids start with EL, not GR"),
        ("XX123456789", None, "'XX123456789' is not a valid VAT id: XX is not the prefix of an EU member state"),
        ("123456789", None, "'123456789' is not a valid VAT id: it must start with the two-letter prefix"),
        ("XI123456782", None, "'XI123456782' is not a valid VAT id: XI (Northern Ireland) numbers apply to goods only"),
        ("EU372000041", None, "'EU372000041' is not a valid VAT id: EU... is a One-Stop-Shop registration"),
        ("DE136695976", "FR", "'DE136695976' is not a valid VAT id for country FR: it starts with DE, expected FR"),
        ("", None, "a VAT id cannot be empty"),
    ],
)
def test_vat_id_errors_say_what_is_wrong(vat_id, country, message):
    error = vat_id_error(vat_id, country)
    assert error is not None and error.startswith(message)


# ==========================================================================
# Lines and totals, tax amount


def test_domestic_invoice_adds_up_and_rounds_tax_once():
    # 100.00 + 23.45 = 123.45; 19 % of it is 23.4555 -> 23.46; total 146.91
    inv = invoice([line("100.00", "vcpu"), line("23.45", "memory")])
    assert figures(inv) == {
        "subtotal": "123.45", "discount_total": "0.00", "promotional_credit": "0.00",
        "taxable_amount": "123.45", "tax": "23.46", "total": "146.91",
        "prepaid_applied": "0.00", "amount_due": "146.91",
    }
    assert inv.to_json()["tax"] == {"category": "S", "rate": "19", "amount": "23.46", "exemption_reason": None, "exemption_code": None}


def test_tax_is_rounded_once_on_the_sum_not_per_line():
    # per line: 0.01 * 19 % = 0.0019 -> 0.00 three times; once on 0.03: 0.0057 -> 0.01
    inv = invoice([line("0.01", "a"), line("0.01", "b"), line("0.01", "c")])
    assert (inv.taxable_amount, inv.tax.amount, inv.total) == (D("0.03"), D("0.01"), D("0.04"))


def test_half_cent_tax_rounds_up_in_half_up_mode():
    # 11.50 * 19 % = 2.185 exactly: half-up gives 2.19
    inv = invoice([line("11.50")], rounding="half_up")
    assert (str(inv.tax.amount), str(inv.total)) == ("2.19", "13.69")


def test_half_cent_tax_rounds_to_even_in_half_even_mode():
    # 11.50 * 19 % = 2.185 exactly: half-even gives 2.18 (8 is even)
    inv = invoice([line("11.50")], rounding="half_even")
    assert (str(inv.tax.amount), str(inv.total)) == ("2.18", "13.68")


def test_eu_b2c_invoice_is_taxed_at_the_buyers_rate():
    # FR 20 %: 80.00 -> 16.00, total 96.00
    inv = invoice([line("80.00")], determine_tax(SELLER, Buyer("FR"), RATES))
    assert (str(inv.tax.amount), str(inv.total)) == ("16.00", "96.00")
    assert inv.to_json()["tax"]["rate"] == "20"


def test_reverse_charged_invoice_has_no_tax_and_says_why():
    inv = invoice([line("80.00")], determine_tax(SELLER, Buyer("FR", "FR23334175221"), RATES))
    assert inv.to_json()["tax"] == {"category": "AE", "rate": "0", "amount": "0.00", "exemption_reason": "Reverse charge", "exemption_code": "VATEX-EU-AE"}
    assert str(inv.total) == "80.00"


def test_export_invoice_has_no_tax_and_says_why():
    inv = invoice([line("80.00")], determine_tax(SELLER, Buyer("US"), RATES))
    assert inv.to_json()["tax"] == {"category": "G", "rate": "0", "amount": "0.00",
                                    "exemption_reason": "Export outside the EU", "exemption_code": "VATEX-EU-G"}


def test_exempt_invoice_has_no_tax_and_gives_the_accounts_reason():
    tax = determine_tax(SELLER, Buyer("DE", tax_exempt=True, exemption_reason="Public body"), RATES)
    inv = invoice([line("80.00")], tax)
    assert inv.to_json()["tax"] == {"category": "E", "rate": "0", "amount": "0.00", "exemption_reason": "Public body", "exemption_code": None}
    assert str(inv.amount_due) == "80.00"


def test_fractional_tax_rate_is_exact():
    # 8.1 % of 99.99 = 8.09919 -> 8.10
    inv = invoice([line("99.99")], TaxTreatment("S", D("8.1")))
    assert (str(inv.tax.amount), inv.to_json()["tax"]["rate"]) == ("8.10", "8.1")


def test_json_lines_keep_every_key_of_the_contract():
    ln = line("12.3", "vcpu", account="acme-dev", resource_id="vm-1", quantity="1069565.217391304348",
              unit="vCPU-s", unit_price=D("0.0000115"), adjustment_for=None)
    [out] = invoice([ln]).to_json()["lines"]
    assert out == {
        "product": "vcpu", "description": "vcpu", "account": "acme-dev", "resource_id": "vm-1",
        "quantity": "1069565.217391304348", "unit": "vCPU-s", "unit_price": "0.0000115", "free": "0", "amount": "12.30",
        "period_start": "2026-10-01T00:00:00+00:00", "period_end": "2026-11-01T00:00:00+00:00",
        "adjustment_for": None,
    }


def test_lines_of_quantity_zero_are_left_out():
    inv = invoice([line("10.00"), line("0.00", "gpu", quantity="0")])
    assert [ln.product for ln in inv.lines] == ["vcpu"]


def test_a_line_fully_covered_by_a_free_allowance_stays_at_zero():
    inv = invoice([line("10.00"), line("0.00", "storage", quantity="5")])
    assert [ln.to_json("EUR")["amount"] for ln in inv.lines] == ["10.00", "0.00"]


def test_line_amounts_are_never_rerounded():
    with pytest.raises(ValueError, match="more decimals than EUR's minor unit"):
        invoice([line("10.005")])


def test_negative_lines_floats_and_empty_invoices_are_refused():
    with pytest.raises(ValueError, match="cannot be negative"):
        line("-1.00")
    with pytest.raises(TypeError, match="float"):
        Line("vcpu", "acme", D(1), "unit", None, 1.5, OCT_START, NOV_START)
    with pytest.raises(ValueError, match="no lines"):
        invoice([])
    with pytest.raises(ValueError, match="no time zone"):
        line("1.00", start=datetime(2026, 10, 1))


def test_an_invoice_that_does_not_add_up_cannot_be_built():
    inv = invoice([line("10.00")])
    with pytest.raises(ValueError, match="BR-CO-15"):
        ComputedInvoice(**{**inv.__dict__, "total": D("12.00")})
    with pytest.raises(ValueError, match="BR-CO-10"):
        ComputedInvoice(**{**inv.__dict__, "subtotal": D("11.00")})


def test_money_is_shown_with_exactly_the_currencys_minor_digits():
    assert money_str(D("12.3"), "EUR") == "12.30"
    assert money_str(D("1230"), "JPY") == "1230"
    assert money_str(D("1.5"), "BHD") == "1.500"
    with pytest.raises(ValueError):
        money_str(D("12.5"), "JPY")


def test_an_amount_travels_with_its_currency_and_two_currencies_never_add_up():
    from fractions import Fraction

    from hub import pricing
    from hub.money import Money, round_money

    assert (str(Money.of("12.3", "EUR")), str(Money.of(1230, "JPY")), str(Money.zero("BHD"))) == ("12.30", "1230", "0.000")
    assert Money.of("10.00", "EUR") + Money.of("2.5", "EUR") == Money.of("12.50", "EUR")
    assert Money.of("1", "EUR") < Money.of("1.01", "EUR")
    assert Money.rounded(Fraction(345, 1000), "EUR", "half_even") == Money.of("0.34", "EUR")
    assert pricing.round_money is round_money  # rounding to the minor unit has one home
    with pytest.raises(ValueError, match="EUR and USD"):
        Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(ValueError, match="EUR and USD"):
        Money.of("1", "EUR") < Money.of("1", "USD")
    with pytest.raises(ValueError, match="minor unit"):
        Money.of("0.5", "JPY")
    with pytest.raises(TypeError):
        Money.of(0.5, "EUR")  # type: ignore[arg-type]


def test_a_credit_grant_built_from_money_keeps_its_currency():
    g = CreditGrant.of("g1", Money.of("50", "CHF"), "prepaid", SEP_START, None, D("20"))
    assert (g.amount, g.currency, g.balance) == (D("50.00"), "CHF", D("20.00"))
    assert (g.money, g.balance_money) == (Money.of("50", "CHF"), Money.of("20", "CHF"))
    inv = invoice([line("100.00")])
    assert (str(inv.total_money), inv.amount_due_money.currency) == ("119.00", "EUR")


# ==========================================================================
# Discounts


def test_percentage_discount_is_an_allowance_rounded_per_line_of_its_product():
    # vcpu lines 100.05 and 33.33 at 10 %: 10.005 -> 10.01, 3.333 -> 3.33; memory untouched
    # subtotal 183.38, discount 13.34, taxable 170.04, tax 19 % = 32.3076 -> 32.31, total 202.35
    ten = Discount(percent=D("10"), product="vcpu")
    inv = invoice([line("100.05", resource_id="vm-1"), line("33.33", resource_id="vm-2"), line("50.00", "memory")],
                  discounts=[ten])
    assert [(a.line, str(a.amount)) for a in inv.allowances] == [(0, "10.01"), (1, "3.33")]
    assert figures(inv) == {
        "subtotal": "183.38", "discount_total": "13.34", "promotional_credit": "0.00",
        "taxable_amount": "170.04", "tax": "32.31", "total": "202.35",
        "prepaid_applied": "0.00", "amount_due": "202.35",
    }


def test_percentage_allowance_follows_the_rounding_mode():
    # 100.05 * 10 % = 10.005: half-up 10.01, half-even 10.00
    ten = Discount(percent=D("10"), product="vcpu")
    assert invoice([line("100.05")], discounts=[ten], rounding="half_up").discount_total == D("10.01")
    assert invoice([line("100.05")], discounts=[ten], rounding="half_even").discount_total == D("10.00")


def test_percentage_discount_without_a_product_applies_to_every_line():
    # 5 % of 10.10 = 0.505 -> 0.51; 5 % of 20.00 = 1.00
    inv = invoice([line("10.10", "a"), line("20.00", "b")], discounts=[Discount(percent=D("5"))])
    assert [str(a.amount) for a in inv.allowances] == ["0.51", "1.00"]


def test_several_percentages_on_a_line_add_up_and_never_exceed_it():
    inv = invoice([line("10.00")], discounts=[Discount(percent=D("70")), Discount(percent=D("50"))])
    # 7.00, then 5.00 capped at the 3.00 left
    assert [str(a.amount) for a in inv.allowances] == ["7.00", "3.00"]
    assert (str(inv.taxable_amount), str(inv.total)) == ("0.00", "0.00")


def test_fixed_discount_comes_off_the_subtotal_after_percentage_discounts():
    # 10 % of vcpu 100.00 = 10.00; fixed 25.00 <= 140.00 left: discount 35.00
    # taxable 115.00, tax 21.85, total 136.85
    inv = invoice([line("100.00"), line("50.00", "memory")],
                  discounts=[Discount(amount=D("25.00")), Discount(percent=D("10"), product="vcpu")])
    assert [(a.line, str(a.amount)) for a in inv.allowances] == [(0, "10.00"), (None, "25.00")]
    assert figures(inv) == {
        "subtotal": "150.00", "discount_total": "35.00", "promotional_credit": "0.00",
        "taxable_amount": "115.00", "tax": "21.85", "total": "136.85",
        "prepaid_applied": "0.00", "amount_due": "136.85",
    }


def test_fixed_discount_larger_than_the_subtotal_is_capped_at_it():
    # 50 % of a's 80.00 = 40.00; fixed 500.00 capped at 120.00 - 40.00 = 80.00
    inv = invoice([line("80.00", "a"), line("40.00", "b")],
                  discounts=[Discount(amount=D("500.00")), Discount(percent=D("50"), product="a")])
    assert [str(a.amount) for a in inv.allowances] == ["40.00", "80.00"]
    assert figures(inv) == {
        "subtotal": "120.00", "discount_total": "120.00", "promotional_credit": "0.00",
        "taxable_amount": "0.00", "tax": "0.00", "total": "0.00",
        "prepaid_applied": "0.00", "amount_due": "0.00",
    }


def test_second_fixed_discount_gets_only_what_the_first_left():
    inv = invoice([line("30.00")], discounts=[Discount(amount=D("20.00")), Discount(amount=D("20.00"))])
    assert [str(a.amount) for a in inv.allowances] == ["20.00", "10.00"]


def test_fixed_discount_on_a_product_is_capped_at_that_products_lines():
    # 15.00 off storage, which costs 12.00 -> 12.00; vcpu 100.00 untouched
    inv = invoice([line("100.00"), line("12.00", "storage")], discounts=[Discount(amount=D("15.00"), product="storage")])
    assert str(inv.discount_total) == "12.00"


def test_fixed_discount_in_another_currency_or_with_too_many_digits_is_refused():
    with pytest.raises(ValueError, match="in USD, the invoice in EUR"):
        invoice([line("10.00")], discounts=[Discount(amount=D("1.00"), currency="USD")])
    with pytest.raises(ValueError, match="more decimals"):
        invoice([line("10.00")], discounts=[Discount(amount=D("1.005"))])


def test_discount_outside_its_validity_window_is_ignored():
    ended = Discount(percent=D("10"), valid_until=OCT_START)  # [.., Oct 1): ends as October starts
    future = Discount(amount=D("5.00"), valid_from=NOV_START)  # starts as October ends
    inv = invoice([line("100.00")], discounts=[ended, future])
    assert inv.allowances == () and str(inv.discount_total) == "0.00"


def test_discount_overlapping_part_of_the_period_applies_in_full():
    mid = Discount(percent=D("10"), valid_from=OCT_MID, valid_until=datetime(2027, 1, 1, tzinfo=UTC))
    fixed = Discount(amount=D("5.00"), valid_from=SEP_START, valid_until=datetime(2026, 10, 2, tzinfo=UTC))
    assert str(invoice([line("100.00")], discounts=[mid, fixed]).discount_total) == "15.00"


def test_percentage_discount_on_an_adjustment_line_follows_the_lines_own_period():
    # a September-only 20 % discount applies to September's late usage billed in October, not to October's
    september = Discount(percent=D("20"), valid_from=SEP_START, valid_until=OCT_START)
    late = line("10.00", start=SEP_START, end=OCT_START, adjustment_for="2026-09")
    inv = invoice([line("50.00"), late], discounts=[september])
    assert [(a.line, str(a.amount)) for a in inv.allowances] == [(1, "2.00")]
    assert inv.to_json()["lines"][1]["adjustment_for"] == "2026-09"


def test_discount_definitions_are_checked():
    with pytest.raises(ValueError, match="either percent or amount"):
        Discount(percent=D("10"), amount=D("1.00"))
    with pytest.raises(ValueError, match="between 0 and 100"):
        Discount(percent=D("120"))
    with pytest.raises(ValueError, match="after valid_from"):
        Discount(percent=D("1"), valid_from=NOV_START, valid_until=OCT_START)


# ==========================================================================
# Credits


def test_promotional_credit_is_applied_before_tax():
    # 100.00 - 30.00 promotional = 70.00 taxable; tax 13.30; total 83.30
    inv = invoice([line("100.00")], grants=[grant("promo", "30.00", "promotional")])
    assert figures(inv) == {
        "subtotal": "100.00", "discount_total": "0.00", "promotional_credit": "30.00",
        "taxable_amount": "70.00", "tax": "13.30", "total": "83.30",
        "prepaid_applied": "0.00", "amount_due": "83.30",
    }


def test_prepaid_credit_is_applied_after_tax():
    # 100.00 taxable; tax 19.00; total 119.00; 30.00 prepaid: 89.00 due
    inv = invoice([line("100.00")], grants=[grant("pre", "30.00", "prepaid")])
    assert figures(inv) == {
        "subtotal": "100.00", "discount_total": "0.00", "promotional_credit": "0.00",
        "taxable_amount": "100.00", "tax": "19.00", "total": "119.00",
        "prepaid_applied": "30.00", "amount_due": "89.00",
    }


def test_promotional_then_prepaid_on_one_invoice():
    # 100.00 - 30.00 promo = 70.00; tax 13.30; total 83.30 all paid by the 200.00 prepaid (116.70 left)
    inv = invoice([line("100.00")], grants=[grant("pre", "200.00"), grant("promo", "30.00", "promotional")])
    assert (str(inv.promotional_credit), str(inv.prepaid_applied), str(inv.amount_due)) == ("30.00", "83.30", "0.00")
    assert [(k.grant_id, k.kind, str(k.amount), str(k.remaining)) for k in inv.consumptions] == [
        ("promo", "promotional", "30.00", "0.00"), ("pre", "prepaid", "83.30", "116.70")]


def test_promotional_credit_stops_at_the_taxable_amount():
    # discount 10.00 leaves 90.00: the 150.00 promotional grant gives 90.00 and keeps 60.00
    inv = invoice([line("100.00")], discounts=[Discount(amount=D("10.00"))],
                  grants=[grant("promo", "150.00", "promotional")])
    assert (str(inv.promotional_credit), str(inv.taxable_amount), str(inv.tax.amount), str(inv.total)) == (
        "90.00", "0.00", "0.00", "0.00")
    assert inv.remaining_balances() == {"promo": D("60.00")}


def test_prepaid_credit_stops_at_the_total():
    inv = invoice([line("100.00")], grants=[grant("pre", "500.00")])
    assert (str(inv.prepaid_applied), str(inv.amount_due)) == ("119.00", "0.00")
    assert inv.remaining_balances() == {"pre": D("381.00")}


def test_expired_grant_is_not_used():
    expired = grant("old", "50.00", expires=OCT_MID)  # expires before the period ends
    inv = invoice([line("100.00")], grants=[expired])
    assert inv.consumptions == () and str(inv.amount_due) == "119.00"


def test_grant_made_at_or_after_the_periods_end_is_not_used():
    late = grant("late", "50.00", granted_at=NOV_START)
    inv = invoice([line("100.00")], grants=[late])
    assert inv.consumptions == () and str(inv.prepaid_applied) == "0.00"


def test_grant_made_during_the_period_pays_it():
    inv = invoice([line("100.00")], grants=[grant("mid", "50.00", granted_at=OCT_MID)])
    assert str(inv.prepaid_applied) == "50.00"


def test_grant_expiring_exactly_at_the_periods_end_does_not_pay_it():
    # docs/billing-rules.md: it "expires after" the period's end to pay it
    inv = invoice([line("100.00")], grants=[grant("edge", "50.00", expires=NOV_START)])
    assert inv.consumptions == () and str(inv.prepaid_applied) == "0.00" and str(inv.amount_due) == "119.00"


def test_grant_expiring_a_second_after_the_periods_end_pays_it():
    inv = invoice([line("100.00")], grants=[grant("edge", "50.00", expires=NOV_START + timedelta(seconds=1))])
    assert str(inv.prepaid_applied) == "50.00" and str(inv.amount_due) == "69.00"


def test_grants_in_another_currency_or_used_up_are_not_used():
    inv = invoice([line("100.00")], grants=[grant("usd", "50.00", currency="USD"),
                                            grant("empty", "50.00", remaining="0.00")])
    assert inv.consumptions == ()


def test_grants_are_consumed_earliest_expiry_first():
    # total 119.00: "dec" (expires 2026-12-31) 50.00, then "jun" (2027-06-30) 50.00, then "never" 19.00
    grants = [grant("never", "50.00", expires=None),
              grant("jun", "50.00", expires=datetime(2027, 6, 30, tzinfo=UTC)),
              grant("dec", "50.00", expires=datetime(2026, 12, 31, tzinfo=UTC))]
    inv = invoice([line("100.00")], grants=grants)
    assert [(k.grant_id, str(k.amount), str(k.remaining)) for k in inv.consumptions] == [
        ("dec", "50.00", "0.00"), ("jun", "50.00", "0.00"), ("never", "19.00", "31.00")]
    assert str(inv.amount_due) == "0.00"


def test_partly_used_grant_carries_over_to_the_next_invoice():
    grants = (grant("pre", "150.00"),)
    # October: 100.00 + 19 % = 119.00, paid in full; 31.00 left
    october = invoice([line("100.00")], grants=grants)
    assert (str(october.prepaid_applied), str(october.amount_due)) == ("119.00", "0.00")
    grants = carry_over(grants, october)
    assert grants[0].remaining == D("31.00") and grants[0].amount == D("150.00")
    # November: 40.00 + 7.60 = 47.60; the 31.00 left pays part of it; 16.60 due, nothing left
    november = invoice([line("40.00", start=NOV_START, end=DEC_START)], start=NOV_START, end=DEC_START, grants=grants)
    assert (str(november.prepaid_applied), str(november.amount_due)) == ("31.00", "16.60")
    grants = carry_over(grants, november)
    assert grants[0].remaining == D("0.00")
    # December: nothing left to use
    december = invoice([line("10.00", start=DEC_START, end=datetime(2027, 1, 1, tzinfo=UTC))],
                       start=DEC_START, end=datetime(2027, 1, 1, tzinfo=UTC), grants=grants)
    assert december.consumptions == () and str(december.amount_due) == "11.90"


def test_credits_pay_a_one_off_manual_charge():
    # a manual charge of 250.00 to a French consumer: 20 % = 50.00, total 300.00, paid by prepaid credit
    manual = Line(product="manual", account="acme", quantity=D("1"), unit="each", unit_price=D("250.00"),
                  amount=D("250.00"), period_start=OCT_START, period_end=NOV_START,
                  description="Migration assistance")
    inv = invoice([manual], FR_VAT, grants=[grant("pre", "500.00")])
    assert figures(inv) == {
        "subtotal": "250.00", "discount_total": "0.00", "promotional_credit": "0.00",
        "taxable_amount": "250.00", "tax": "50.00", "total": "300.00",
        "prepaid_applied": "300.00", "amount_due": "0.00",
    }
    assert inv.remaining_balances() == {"pre": D("200.00")}
    assert inv.to_json()["lines"][0]["description"] == "Migration assistance"


def test_grant_definitions_are_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        grant("x", "10.00", "gift")
    with pytest.raises(ValueError, match="balance must be between 0"):
        grant("x", "10.00", remaining="11.00")
    with pytest.raises(ValueError, match="same id"):
        invoice([line("1.00")], grants=[grant("x", "1.00"), grant("x", "2.00")])


# ==========================================================================
# A zero-decimal currency


def test_jpy_invoice_has_no_minor_digits():
    # 1230 + 1234 = 2464; 15 % of 1234 = 185.1 -> 185; taxable 2279; 19 % = 433.01 -> 433; total 2712
    inv = invoice([line("1230", "vcpu"), line("1234", "memory")], currency="JPY",
                  discounts=[Discount(percent=D("15"), product="memory")])
    assert figures(inv) == {
        "subtotal": "2464", "discount_total": "185", "promotional_credit": "0",
        "taxable_amount": "2279", "tax": "433", "total": "2712",
        "prepaid_applied": "0", "amount_due": "2712",
    }
    assert [ln["amount"] for ln in inv.to_json()["lines"]] == ["1230", "1234"]
    assert inv.to_json()["tax"]["amount"] == "433"


def test_jpy_half_yen_tax_follows_the_rounding_mode():
    # 150 * 19 % = 28.5 yen exactly: half-up 29, half-even 28 (8 is even)
    assert invoice([line("150")], currency="JPY", rounding="half_up").tax.amount == D("29")
    assert invoice([line("150")], currency="JPY", rounding="half_even").tax.amount == D("28")
    with pytest.raises(ValueError, match="more decimals than JPY"):
        invoice([line("12.50")], currency="JPY")


# ==========================================================================
# Properties: every invoice adds up, whatever its inputs


_cents = st.integers(min_value=0, max_value=10**7).map(lambda c: D(c).scaleb(-2))


@settings(max_examples=200, deadline=None)
@given(
    amounts=st.lists(_cents, min_size=1, max_size=6),
    percents=st.lists(st.integers(min_value=0, max_value=100), max_size=3),
    fixed=st.lists(_cents, max_size=2),
    promo=st.lists(_cents, max_size=2),
    prepaid=st.lists(_cents, max_size=2),
    rate=st.sampled_from(["0", "7", "19", "20", "8.1", "25.5"]),
    mode=st.sampled_from(["half_up", "half_even"]),
)
def test_every_invoice_adds_up_and_no_balance_goes_negative(amounts, percents, fixed, promo, prepaid, rate, mode):
    lines = [line(format(a, "f"), f"p{i % 2}") for i, a in enumerate(amounts)]
    discounts = [Discount(percent=D(p), product="p0") for p in percents] + [Discount(amount=a) for a in fixed]
    grants = [grant(f"promo{i}", format(a, "f"), "promotional") for i, a in enumerate(promo)]
    grants += [grant(f"pre{i}", format(a, "f"), "prepaid") for i, a in enumerate(prepaid)]
    tax = TaxTreatment("S", D(rate))
    inv = invoice(lines, tax, discounts=discounts, grants=grants, rounding=mode)
    # the identities are checked when the invoice is built; here the bounds
    assert D(0) <= inv.discount_total <= inv.subtotal
    assert inv.promotional_credit == min(sum((g.amount for g in grants if g.kind == "promotional"), D(0)),
                                         inv.subtotal - inv.discount_total)
    assert inv.prepaid_applied == min(sum((g.amount for g in grants if g.kind == "prepaid"), D(0)), inv.total)
    assert isinstance(inv.tax, Tax) and inv.amount_due >= 0
    by_id = {g.id: g for g in grants}
    for k in inv.consumptions:
        assert k.amount > 0 and k.remaining >= 0 and k.amount + k.remaining == by_id[k.grant_id].amount
