"""Who is calling the Mini App API: Telegram's initData, checked with the bot token.

The Mini App sends ``Authorization: tma <initData>`` (the raw query string Telegram gave the
page). aiogram's `safe_parse_webapp_init_data` checks its HMAC with the bot token; the
``auth_date`` it carries must be at most `max_age` seconds old (a copied initData stops
working). Anything else — no header, a changed byte, an old one — is `Unauthorized`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiogram.utils.web_app import WebAppInitData, safe_parse_webapp_init_data

SCHEME = "tma"
CLOCK_SKEW = 60  # seconds an auth_date may lie in the future (clocks differ a little)


class Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebAppUser:
    telegram_id: int
    language_code: str | None


def init_data_of(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != SCHEME or not value.strip():
        raise Unauthorized("missing")
    return value.strip()


def authenticate(token: str, authorization: str | None, now: datetime, max_age: int) -> WebAppUser:
    """The Telegram user the initData was signed for; `Unauthorized` if it was not signed
    with this bot's token, names no user, or is older than `max_age` seconds."""
    raw = init_data_of(authorization)
    try:
        data: WebAppInitData = safe_parse_webapp_init_data(token, raw)
    except (ValueError, TypeError) as exc:  # bad signature, or unparsable fields
        raise Unauthorized("bad_signature") from exc
    age = (now - data.auth_date).total_seconds()
    if age > max_age or age < -CLOCK_SKEW:
        raise Unauthorized("expired")
    if data.user is None:
        raise Unauthorized("no_user")
    return WebAppUser(data.user.id, data.user.language_code)
