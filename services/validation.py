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


_CURRENCY = re.compile(
    r"\s*(?:руб(?:лей|ля|ль)?|р|rub|rur|roubles?|rubles?|₽)\.?$|^(?:₽|rub)\s*", re.IGNORECASE
)
# Words people put after a sum: "120 тыс", "150к", "1,2 млн", "150k", "1.2m", "200 тр".
_MULTIPLIER = re.compile(
    r"\s*(?P<w>тыс(?:яч[аи]?)?|т\.?\s?р|тр|т|к|k|thousand|млн|миллион(?:а|ов)?|mln|m|million)\.?$",
    re.IGNORECASE,
)
_MULTIPLIERS = {"т": 10**3, "к": 10**3, "k": 10**3, "м": 10**6, "m": 10**6}
_GROUPED = re.compile(r"^\d{1,3}(?P<sep>[.,])\d{3}(?:(?P=sep)\d{3})+$")  # 1,200,000
_ONE_GROUP = re.compile(r"^\d{1,3}[.,]\d{3}$")  # "1,200": 1 200 or 1.2?


def _amount_text(value: str) -> Decimal:
    """A typed sum as people write it -> roubles: "150 000", "1500,50", "120 тыс", "150к",
    "1,2 млн", "150k", "1.2m", "150 000 руб", "₽ 9 900", "1,200,000". A lone group of three
    after one separator ("1,200", "1.500") is refused as ambiguous: 1 200 or 1,2?"""
    text = value.strip().lower()
    if len(text) > 40:
        raise ValidationError("amount", "not_a_number")
    text = _CURRENCY.sub("", text)
    factor = 1
    m = _MULTIPLIER.search(text)
    if m is not None and m.start() > 0:
        factor = _MULTIPLIERS[m["w"][0]]
        text = text[: m.start()]
        text = _CURRENCY.sub("", text)  # "150 руб тыс" is not a way to say it, but harmless
    text = re.sub(r"[\s\u00a0_']", "", text)
    if factor == 1:
        grouped = _GROUPED.match(text)
        if grouped is not None:
            text = text.replace(grouped["sep"], "")
        elif _ONE_GROUP.match(text):
            raise ValidationError("amount", "ambiguous")
    text = text.replace(",", ".")
    if not text or len(text) > 24 or not re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        raise ValidationError("amount", "not_a_number")
    try:
        return Decimal(text) * factor
    except InvalidOperation as exc:  # pragma: no cover - the pattern above admits none
        raise ValidationError("amount", "not_a_number") from exc


def amount(value: str | int | Decimal) -> int:
    """Parse a money amount in roubles ("150 000", "1500,50", "120 тыс") into kopecks."""
    if isinstance(value, bool):
        raise ValidationError("amount", "not_a_number")
    if isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, Decimal):
        dec = value
    elif isinstance(value, str):
        dec = _amount_text(value)
    else:
        raise ValidationError("amount", "not_a_number")
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
