"""Amounts at the edge: the only place that knows currency exponents, parses and renders amounts.

The currencies (code, exponent, enabled) are read from `money.models.Currency` and kept for a
minute; `forget_currencies` drops them after a change.
"""

import time
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import overload

from wallet_project.errors import ValidationFailedError
from wallet_project.parsers import ExponentNumber

MAX_INTEGER_DIGITS = 18
_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class CurrencyInfo:
    code: str
    exponent: int
    enabled: bool

    @property
    def quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.exponent)


_currencies: dict[str, CurrencyInfo] = {}
_loaded_at = 0.0


def _load() -> dict[str, CurrencyInfo]:
    """Every currency by code, read again from the database once older than `_CACHE_SECONDS`.

    A per-process cache: the console shows currencies read-only, so a change to the table
    (a migration, SQL) reaches a running process within a minute, not at once.
    """
    global _currencies, _loaded_at
    if not _currencies or time.monotonic() - _loaded_at > _CACHE_SECONDS:
        from money.models import Currency

        _currencies = {
            c.code: CurrencyInfo(c.code, c.exponent, c.enabled) for c in Currency.objects.all()
        }
        _loaded_at = time.monotonic()
    return _currencies


def forget_currencies() -> None:
    """Make the next read reload the currencies (tests call this after changing them)."""
    global _loaded_at
    _loaded_at = 0.0


def currency_info(code: str) -> CurrencyInfo:
    """The enabled currency `code`; raises ValidationFailedError when unknown or disabled."""
    info = _load().get(code)
    if info is None or not info.enabled:
        raise ValidationFailedError(
            details={"currency": [f"'{code}' is not a supported currency."]}
        )
    return info


def lookup_currency(code: str) -> CurrencyInfo | None:
    """The currency `code`, enabled or not; None when unknown."""
    return _load().get(code)


def exponent_of(code: str) -> int:
    info = _load().get(code)
    return info.exponent if info else 2


def quantize(amount: Decimal, code: str) -> Decimal:
    """Round `amount` to the currency's minor unit (banker's rounding; callers pass exact values)."""
    return amount.quantize(Decimal(1).scaleb(-exponent_of(code)), rounding=ROUND_HALF_EVEN)


@overload
def format_amount(amount: Decimal, code: str) -> str: ...
@overload
def format_amount(amount: Decimal | None, code: str) -> str | None: ...
def format_amount(amount: Decimal | None, code: str) -> str | None:
    """Render with exactly the currency's digits: `"10.50"`, `"1200"`, `"0.000"`."""
    if amount is None:
        return None
    return f"{quantize(Decimal(amount), code):f}"


def parse_amount(raw: object, code: str) -> Decimal:
    """Parse a request amount (string or JSON number) strictly; raises ValueError with a reason."""
    if isinstance(raw, bool) or raw is None:
        raise ValueError('Send the amount as a decimal string such as "10.50".')
    if isinstance(raw, ExponentNumber):
        raise ValueError("Exponent notation is not accepted.")
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, Decimal):
        text = format(raw, "f") if raw.is_finite() else "NaN"
    elif isinstance(raw, str):
        text = raw.strip()
    else:
        raise ValueError('Send the amount as a decimal string such as "10.50".')
    if not text or any(c in text for c in "eE") or text.lower() in {"nan", "inf", "infinity"}:
        raise ValueError("A plain decimal number is required (no exponent, NaN or Infinity).")
    body = text[1:] if text[0] in "+-" else text
    # ASCII only: str.isdigit() and Decimal() also read Arabic-Indic or full-width digits.
    if not body.isascii() or not body.replace(".", "", 1).isdigit():
        raise ValueError("A valid number is required.")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError("A valid number is required.") from exc
    if not value.is_finite():
        raise ValueError("A finite amount is required.")
    if value <= 0:
        raise ValueError("The amount must be greater than zero.")
    integer_part, _, fraction = body.partition(".")
    if len(integer_part.lstrip("0")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"At most {MAX_INTEGER_DIGITS} integer digits are allowed.")
    exponent = currency_info(code).exponent
    if len(fraction) > exponent:
        raise ValueError(f"{code} allows at most {exponent} decimal places.")
    return value
