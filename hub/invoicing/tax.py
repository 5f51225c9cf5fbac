"""Tax determination and VAT ids (docs/billing-rules.md, Tax).

Pure functions, no I/O, no network: a VAT id is checked for its format and
check digits with python-stdnum (``stdnum.eu.vat``), never against VIES.

The tax of an invoice is one :class:`TaxTreatment` (category, rate,
exemption reason), decided by :func:`determine_tax` from the seller, the
buyer (the invoiced account: for a parent account, the parent) and the
standard rates by country:

1. the account is tax-exempt: ``E``, rate 0, the account's own exemption
   reason (required: EN 16931 BR-E-10 wants a reason on every E invoice);
2. same country as the seller: ``S`` at the seller country's rate, whether
   or not the buyer has a VAT id (a domestic B2B sale is not reverse
   charged);
3. another EU country, with a valid VAT id: ``AE``, rate 0, "Reverse charge";
4. another EU country, no VAT id: ``S`` at the buyer country's rate;
5. outside the EU: ``G``, rate 0, "Export outside the EU".

Readings where the rules leave room:

- **The EU** is ``stdnum.eu.vat.MEMBER_STATES`` (maintained with python-
  stdnum) less ``XI``: Northern Ireland's XI numbers exist for goods only,
  and XI is not an ISO 3166 country (Northern Ireland is ``GB``, outside the
  EU for services). Country codes are ISO 3166-1 alpha-2, so Greece is
  ``GR``; VAT ids use ``EL`` for Greece (:func:`vat_prefix`). ``EL`` given
  as a country is read as ``GR``, and codes are case-insensitive.
- **Exempt first.** An account marked tax-exempt is exempt wherever it is:
  the flag is an explicit decision of the operator's finance team.
- **A VAT id is checked whenever the buyer is in the EU**, also for a
  domestic or exempt buyer: an invalid id is an error
  (:class:`InvalidVatId`), never silently read as "no VAT id" (which would
  turn a reverse-charged invoice into one with VAT). Its prefix must be the
  buyer's country (``EL`` for ``GR``): the reverse charge rests on the
  customer's identification in its own member state, and a mismatch is
  almost always a typo. ``GR`` as a prefix, OSS numbers (``EU...``) and
  ``XI`` numbers are refused with a message that says so. A buyer outside
  the EU may carry any tax number; it is not an EU VAT id and is not
  checked.
- **A seller outside the EU** can only sell domestically under these
  rules (``S`` at its own rate); a cross-border sale is a ``ValueError``
  rather than a guess.
- **Rates** are percentages (``Decimal("19")``, ``"8.1"``), given as Decimal,
  str or int, never float. A missing rate for the country that needs one is
  a :class:`MissingTaxRate` naming it.
- **Exemption codes.** Besides the reason text, :class:`TaxTreatment` gives
  the EN 16931 VATEX code for ``AE`` (``VATEX-EU-AE``) and ``G``
  (``VATEX-EU-G``) for the UBL renderer; an exempt account's code is not
  known (its reason text is).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stdnum.eu import vat as _eu_vat
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

#: ISO 3166-1 alpha-2 codes of the EU member states (Greece is ``GR``)
EU_COUNTRIES: frozenset[str] = frozenset(cc.upper() for cc in _eu_vat.MEMBER_STATES if cc.lower() != "xi")

REVERSE_CHARGE_REASON = "Reverse charge"
EXPORT_REASON = "Export outside the EU"

STANDARD = "S"
REVERSE_CHARGE = "AE"
EXPORT = "G"
EXEMPT = "E"


class InvalidVatId(ValueError):
    """A VAT id that is not a valid EU VAT id; the message says why."""


class MissingTaxRate(KeyError):
    """No standard rate is configured for the country the invoice needs."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def country_code(country: str) -> str:
    """``country`` as an upper-case ISO 3166-1 alpha-2 code (``el`` -> ``GR``)."""
    if not isinstance(country, str) or len(country.strip()) != 2 or not country.strip().isalpha():
        raise ValueError(f"{country!r} is not a two-letter ISO 3166 country code")
    cc = country.strip().upper()
    return "GR" if cc == "EL" else cc


def is_eu(country: str) -> bool:
    """Whether ``country`` (ISO 3166-1 alpha-2) is an EU member state."""
    return country_code(country) in EU_COUNTRIES


def vat_prefix(country: str) -> str:
    """The prefix of ``country``'s VAT ids: the ISO code, except ``EL`` for Greece."""
    cc = country_code(country)
    return "EL" if cc == "GR" else cc


def vat_id_error(vat_id: str, country: str | None = None) -> str | None:
    """Why ``vat_id`` is not a valid EU VAT id (of ``country``, when given),
    or None when it is valid.

    Checks the format and the check digits offline (python-stdnum); spaces,
    dots and dashes are allowed and ignored. The message names the id and
    says what is wrong, for example ``"DE136695977" is not a valid VAT id:
    its check digits are wrong``.
    """
    if not isinstance(vat_id, str) or not vat_id.strip():
        return "a VAT id cannot be empty"
    shown = vat_id.strip()
    compact = "".join(ch for ch in shown if ch not in " .-/").upper()
    prefix = compact[:2]
    head = f"{shown!r} is not a valid VAT id"
    if not prefix.isalpha() or len(prefix) < 2:
        return f"{head}: it must start with the two-letter prefix of an EU member state (DE, FR, EL...)"
    if prefix == "GR":
        return f"{head}: Greek VAT ids start with EL, not GR"
    if prefix == "XI":
        return f"{head}: XI (Northern Ireland) numbers apply to goods only; for services Northern Ireland is outside the EU"
    if prefix == "EU":
        return f"{head}: EU... is a One-Stop-Shop registration, not a member state's VAT id"
    if country_code(prefix) not in EU_COUNTRIES:
        return f"{head}: {prefix} is not the prefix of an EU member state"
    if country is not None:
        expected = vat_prefix(country)
        if prefix != expected:
            return f"{head} for country {country_code(country)}: it starts with {prefix}, expected {expected}"
    try:
        _eu_vat.validate(compact)
    except InvalidChecksum:
        return f"{head}: its check digits are wrong"
    except InvalidLength:
        return f"{head}: it has the wrong number of characters for {prefix}"
    except InvalidFormat:
        return f"{head}: its format is wrong for {prefix}"
    except InvalidComponent:
        return f"{head}: a part of it is not valid for {prefix}"
    except ValidationError as exc:  # any other reason stdnum may add
        return f"{head}: {exc}"
    return None


def validate_vat_id(vat_id: str, country: str | None = None) -> str:
    """``vat_id`` in its compact form (``"FR 40 303 265 045"`` ->
    ``"FR40303265045"``); :class:`InvalidVatId` with the message of
    :func:`vat_id_error` when it is not valid."""
    error = vat_id_error(vat_id, country)
    if error is not None:
        raise InvalidVatId(error)
    return _eu_vat.compact(vat_id)


def is_valid_vat_id(vat_id: str, country: str | None = None) -> bool:
    """Whether ``vat_id`` is a valid EU VAT id (of ``country``, when given)."""
    return vat_id_error(vat_id, country) is None


@dataclass(frozen=True)
class Seller:
    """The operator that issues the invoices."""

    country: str
    vat_id: str | None = None


@dataclass(frozen=True)
class Buyer:
    """The invoiced account, as far as tax goes."""

    country: str
    vat_id: str | None = None
    tax_exempt: bool = False
    exemption_reason: str | None = None


@dataclass(frozen=True)
class TaxTreatment:
    """The tax of an invoice: EN 16931 category (``S``, ``AE``, ``G``, ``E``),
    rate in percent, and the exemption reason (None for ``S``)."""

    category: str
    rate: Decimal
    exemption_reason: str | None = None
    exemption_code: str | None = None

    def __post_init__(self) -> None:
        if self.category not in (STANDARD, REVERSE_CHARGE, EXPORT, EXEMPT):
            raise ValueError(f"{self.category!r} is not a tax category (S, AE, G, E)")
        rate = _rate(self.rate, "rate")
        object.__setattr__(self, "rate", rate)
        if self.category != STANDARD and rate != 0:
            raise ValueError(f"category {self.category} has rate 0, not {rate}")
        if self.category != STANDARD and not self.exemption_reason:
            raise ValueError(f"category {self.category} needs an exemption reason")


def _rate(value: Decimal | str | int, where: str) -> Decimal:
    if isinstance(value, (float, bool)):
        raise TypeError(f"{where}: {value!r} is a {type(value).__name__}; give a rate as a Decimal or a string")
    try:
        rate = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{where}: {value!r} is not a number") from None
    if not rate.is_finite() or not 0 <= rate <= 100:
        raise ValueError(f"{where}: a tax rate is a percentage between 0 and 100, not {value}")
    return rate


def _rate_of(rates: Mapping[str, Decimal | str | int], country: str) -> Decimal:
    by_code = {country_code(k): v for k, v in rates.items()}
    if country not in by_code:
        raise MissingTaxRate(f"no standard tax rate is configured for {country} ([tax.rates] {country} = \"...\")")
    return _rate(by_code[country], f"tax rate of {country}")


def determine_tax(seller: Seller, buyer: Buyer, rates: Mapping[str, Decimal | str | int]) -> TaxTreatment:
    """The tax category, rate and exemption reason of an invoice from
    ``seller`` to ``buyer``, with the standard ``rates`` (percent) by
    country code. See the module's docstring for the rules and readings."""
    seller_cc = country_code(seller.country)
    buyer_cc = country_code(buyer.country)
    vat_id = buyer.vat_id.strip() if buyer.vat_id and buyer.vat_id.strip() else None
    if vat_id is not None and buyer_cc in EU_COUNTRIES:
        validate_vat_id(vat_id, buyer_cc)
    if buyer.tax_exempt:
        reason = (buyer.exemption_reason or "").strip()
        if not reason:
            raise ValueError("a tax-exempt account needs an exemption reason (EN 16931 BR-E-10)")
        return TaxTreatment(EXEMPT, Decimal(0), reason)
    if buyer_cc == seller_cc:
        return TaxTreatment(STANDARD, _rate_of(rates, seller_cc))
    if seller_cc not in EU_COUNTRIES:
        raise ValueError(
            f"the seller's country {seller_cc} is not in the EU: the hub's tax rules (EU rules) "
            f"only cover its domestic sales, not a sale to {buyer_cc}"
        )
    if buyer_cc in EU_COUNTRIES:
        if vat_id is not None:
            return TaxTreatment(REVERSE_CHARGE, Decimal(0), REVERSE_CHARGE_REASON, "VATEX-EU-AE")
        return TaxTreatment(STANDARD, _rate_of(rates, buyer_cc))
    return TaxTreatment(EXPORT, Decimal(0), EXPORT_REASON, "VATEX-EU-G")
