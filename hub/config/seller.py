"""``[seller]`` and ``[tax.rates]``: who issues the invoices, and the
standard rates their tax needs; checked and typed.

The seller's identifiers (VAT id, IBAN, BIC, e-mail, telephone) are
checked here; so is, for a seller in the EU, that every invoiced account's
tax has the rate it needs (asked of :func:`hub.invoicing.tax.determine_tax`,
pure tax rules, with no configuration and no store). It must not know
how an invoice is built or numbered.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from hub.config.document import Document
from hub.config.errors import ConfigError
from hub.config.identifiers import email_problem, phone_problem, vat_problem
from hub.config.model import Address, SellerConfig
from hub.config.raw import decimal_of, items, table, text
from hub.invoicing.tax import EU_COUNTRIES, Buyer, MissingTaxRate, Seller, country_code, determine_tax


def seller_errors(doc: Document) -> list[ConfigError]:
    """``[tax.rates]`` (percentages), ``[seller]``'s identifiers, the rate
    of the seller's country, and the rate each invoiced account needs."""
    errors: list[ConfigError] = []
    data = doc.data
    seller = data.get("seller") if isinstance(data.get("seller"), dict) else None
    rates = table(table(data, "tax"), "rates")
    tax_file, tax_table, _ = doc.locate(["tax", "rates"])
    for cc, written in rates.items():
        rate = decimal_of(rates, cc)
        if rate is not None and not 0 <= rate <= 100:
            errors.append(ConfigError(tax_file, tax_table, f"rates.{cc}",
                                      f"a tax rate is a percentage between 0 and 100, not {written}"))
    if seller is None:
        return errors
    seller_file, seller_table, _ = doc.locate(["seller", "x"])
    country = text(seller, "country")
    try:
        seller_cc = country_code(country) if country is not None else None
    except ValueError:
        seller_cc = None
    vat_id = text(seller, "vat_id")
    for key, problem in (("vat_id", vat_problem(vat_id, country) if vat_id is not None else None),
                         ("email", email_problem(text(seller, "email"))),
                         ("phone", phone_problem(text(seller, "phone")))):
        if problem:
            errors.append(ConfigError(seller_file, seller_table, key, problem))
    for key, module, what in (("iban", stdnum_iban, "an IBAN"), ("bic", stdnum_bic, "a BIC")):
        value = text(seller, key)
        if value is not None:
            try:
                module.validate(value)
            except StdnumError as exc:
                errors.append(ConfigError(seller_file, seller_table, key, f"{value!r} is not {what}: {exc}"))
    rate_countries = set()
    for cc in rates:
        try:
            rate_countries.add(country_code(cc))
        except ValueError:
            pass  # refused by the schema
    if seller_cc is not None and seller_cc not in rate_countries:
        errors.append(ConfigError(tax_file, tax_table, "rates",
                                  f"no standard rate for the seller's country {seller_cc}: "
                                  f"add {seller_cc} = \"...\" to [tax.rates]"))
    # The rate each invoiced account's tax needs (an account invoiced
    # through its parent is taxed as the parent).
    elif seller_cc in EU_COUNTRIES:
        for i, acc in items(data, "accounts"):
            acc_country = text(acc, "country")
            if text(acc, "parent") is not None or acc_country is None or acc.get("tax_exempt") is True:
                continue
            try:
                determine_tax(Seller(seller_cc), Buyer(acc_country, text(acc, "vat_id")),
                              dict.fromkeys(rate_countries, 0))
            except MissingTaxRate as exc:
                errors.append(doc.error(["accounts", i], "country", str(exc)))
            except ValueError:
                continue  # an invalid VAT id or country: reported by its own check
    return errors


def typed_seller(data: Mapping[str, Any]) -> SellerConfig | None:
    """``[seller]`` of a valid document, None when it has none; the IBAN
    and BIC compact (no spaces)."""
    if "seller" not in data:
        return None
    s = data["seller"]
    return SellerConfig(
        name=s["name"], country=s["country"], vat_id=s["vat_id"].strip() if "vat_id" in s else None,
        email=s.get("email"), address=Address.of(s.get("address")), peppol_id=s.get("peppol_id"),
        iban=stdnum_iban.compact(s["iban"]) if "iban" in s else None,
        bic=stdnum_bic.compact(s["bic"]) if "bic" in s else None, phone=s.get("phone"),
        legal_form=s.get("legal_form"), commercial_register=s.get("commercial_register"),
        register_court=s.get("register_court"), managing_directors=tuple(s.get("managing_directors", ())),
        share_capital=Decimal(s["share_capital"]) if "share_capital" in s else None,
    )


def tax_rates(data: Mapping[str, Any]) -> dict[str, Decimal]:
    """``[tax.rates]`` of a valid document: country code -> percent."""
    return {cc: Decimal(rate) for cc, rate in data.get("tax", {}).get("rates", {}).items()}
