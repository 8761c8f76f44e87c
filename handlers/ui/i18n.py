"""Texts: gettext catalogs (.po) read with Babel, one domain file per area.

`handlers/locales/<lang>/LC_MESSAGES/<area>.po` — msgids are stable keys such as
``deal.card.amount``; msgstrs are the texts, with ``{name}`` placeholders filled by
`t()`. Every area keeps its own domain file, and all domains of a language are merged.
Russian is the default and the fallback; a key missing everywhere renders as itself
(a test makes sure none is missing).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LANG = "ru"
LANGUAGES = ("ru", "en")


@cache
def catalog(lang: str) -> dict[str, str]:
    messages: dict[str, str] = {}
    folder = LOCALES_DIR / lang / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            cat = read_po(fh, locale=lang)
        for message in cat:
            if message.id and isinstance(message.id, str) and message.string:
                messages[message.id] = str(message.string)
    return messages


def lang_of(code: str | None) -> str:
    """Map a Telegram language_code (en-US, ru, uk…) to a supported language."""
    if code:
        short = code.split("-")[0].lower()
        if short in LANGUAGES:
            return short
    return DEFAULT_LANG


def t(key: str, lang: str | None = None, /, **params: Any) -> str:
    language = lang if lang in LANGUAGES else DEFAULT_LANG
    text = catalog(language).get(key) or catalog(DEFAULT_LANG).get(key) or key
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def has(key: str, lang: str = DEFAULT_LANG) -> bool:
    return key in catalog(lang)
