"""Input normalisation shared by every front-end (bot wizard, intake API, import)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from services.errors import ValidationError

MAX_NAME = 200
MAX_TEXT = 2000
MAX_AMOUNT_MINOR = 10**15  # a trillion roubles is a typo, not a deal
DEFAULT_REGION = "RU"


def name(value: str, field: str = "name", max_len: int = MAX_NAME) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValidationError(field, "empty")
    if len(cleaned) > max_len:
        raise ValidationError(field, "too_long", max=max_len)
    if not any(ch.isalnum() for ch in cleaned):
        raise ValidationError(field, "invalid")
    return cleaned


def optional_text(value: str | None, field: str, max_len: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > max_len:
        raise ValidationError(field, "too_long", max=max_len)
    return cleaned


def phone(value: str, region: str = DEFAULT_REGION) -> str:
    """Return E.164 (+79161234567) or raise ValidationError('phone')."""
    raw = value.strip()
    if not raw or len(raw) > 32:
        raise ValidationError("phone", "invalid")
    if raw.startswith("8") and len(re.sub(r"\D", "", raw)) == 11 and region == "RU":
        raw = "+7" + re.sub(r"\D", "", raw)[1:]
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("phone", "invalid") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError("phone", "invalid")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def email(value: str) -> str:
    raw = value.strip()
    if len(raw) > 254:
        raise ValidationError("email", "invalid")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationError("email", "invalid") from exc
    return str(result.normalized)


_AMOUNT_CLEAN = re.compile(r"[\s\u00a0_']|(?:руб\.?|р\.?|rub|₽)$", re.IGNORECASE)


def amount(value: str | int | Decimal) -> int:
    """Parse a money amount in roubles ("150 000", "1500,50") into kopecks."""
    if isinstance(value, bool):
        raise ValidationError("amount", "not_a_number")
    if isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, Decimal):
        dec = value
    else:
        text = _AMOUNT_CLEAN.sub("", value.strip().lower()).replace(",", ".")
        if not text or len(text) > 24:
            raise ValidationError("amount", "not_a_number")
        try:
            dec = Decimal(text)
        except InvalidOperation as exc:
            raise ValidationError("amount", "not_a_number") from exc
    if not dec.is_finite():
        raise ValidationError("amount", "not_a_number")
    if dec < 0:
        raise ValidationError("amount", "negative")
    minor = dec * 100
    if minor != minor.to_integral_value():
        raise ValidationError("amount", "too_precise")
    result = int(minor)
    if result > MAX_AMOUNT_MINOR:
        raise ValidationError("amount", "too_large")
    return result
