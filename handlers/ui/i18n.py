"""Texts: gettext catalogs (.po) read with Babel, one domain file per area.

`handlers/locales/<lang>/LC_MESSAGES/<area>.po` — msgids are stable keys such as
``deal.card.amount``; msgstrs are the texts, with ``{name}`` placeholders filled by
`t()`. Every area keeps its own domain file, and all domains of a language are merged.
Russian is the default and the fallback; a key missing everywhere renders as itself
(a test makes sure none is missing). The .po files ship inside the package (wheel) and
are read from here, installed or not.

Plural forms are gettext's own: a text with a number in it is a plural entry whose
``msgid_plural`` names the placeholder that holds the number::

    msgid "digest.snapshot"
    msgid_plural "{count}"
    msgstr[0] "In work: {count} deal"     # ru form 0 ("one"):  1, 21, 101 ...
    msgstr[1] "In work: {count} deals"    # ru form 1 ("few"):  2-4, 22-24 ...
                                          # ru form 2 ("many"): 0, 5-20, 25 ...

``t("digest.snapshot", lang, count=n)`` then picks the form for ``n`` by the language's
gettext plural rule (the catalog's ``Plural-Forms`` header, else Babel's CLDR data: three
forms for ru, two for en), so callers need not know which texts have plurals. `tn(key, n,
lang, **params)` does the same with the number given explicitly. `catalog(lang)` maps a
plural key to its last ("many"/"other") form, for checks that only look at the keys and
placeholders; tests/unit/core/test_plurals.py renders every plural text for 1, 2, 5, 11, 21.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LANG = "ru"
LANGUAGES = ("ru", "en")


@dataclass(frozen=True)
class Plural:
    """A plural text: the placeholder holding the number and one form per plural index."""

    param: str
    forms: tuple[str, ...]


@dataclass
class Texts:
    singles: dict[str, str] = field(default_factory=dict)
    plurals: dict[str, Plural] = field(default_factory=dict)
    plural_expr: str = "(n != 1)"

    @property
    def index(self) -> Callable[[int], int]:
        return _plural_function(self.plural_expr)


@cache
def _plural_function(expr: str) -> Callable[[int], int]:
    return gettext.c2py(expr)  # gettext's own evaluator of a Plural-Forms expression


@cache
def texts(lang: str) -> Texts:
    result = Texts()
    folder = LOCALES_DIR / lang / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            cat = read_po(fh, locale=lang)
        result.plural_expr = cat.plural_expr
        for message in cat:
            if not message.id or not message.string:
                continue
            if isinstance(message.id, str):
                result.singles[message.id] = str(message.string)
                continue
            key, plural = message.id[0], message.id[1]
            forms = tuple(str(s) for s in message.string)
            if key and all(forms):
                result.plurals[key] = Plural(plural.strip().strip("{}"), forms)
    return result


@cache
def catalog(lang: str) -> dict[str, str]:
    """Every key of a language -> its text (a plural text: its last form)."""
    found = texts(lang)
    messages = dict(found.singles)
    messages.update({key: p.forms[-1] for key, p in found.plurals.items()})
    return messages


def lang_of(code: str | None) -> str:
    """Map a Telegram language_code (en-US, ru, uk…) to a supported language."""
    if code:
        short = code.split("-")[0].lower()
        if short in LANGUAGES:
            return short
    return DEFAULT_LANG


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _lookup(key: str, language: str, n: int | None, params: dict[str, Any]) -> str | None:
    found = texts(language)
    plural = found.plurals.get(key)
    if plural is None:
        return found.singles.get(key)
    if n is None:
        n = _count(params.get(plural.param))
    if n is None:
        return plural.forms[-1]
    index = found.index(abs(n))
    return plural.forms[min(index, len(plural.forms) - 1)]


def _render(key: str, lang: str | None, n: int | None, params: dict[str, Any]) -> str:
    language = lang if lang in LANGUAGES else DEFAULT_LANG
    text = _lookup(key, language, n, params) or _lookup(key, DEFAULT_LANG, n, params) or key
    if params:
        try:
            return text.format_map(_Keep(params))
        except (IndexError, ValueError):
            return text
    return text


class _Keep(dict[str, Any]):
    """Format parameters; a placeholder nobody passed stays as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def t(key: str, lang: str | None = None, /, **params: Any) -> str:
    """The text of `key` in `lang` with `params` filled in; a plural text takes its form
    from the parameter its msgid_plural names (e.g. ``count``)."""
    return _render(key, lang, None, params)


def tn(key: str, n: int, lang: str | None = None, /, **params: Any) -> str:
    """`t()` with the plural form chosen by `n` (whatever the parameters hold)."""
    return _render(key, lang, n, params)


def is_plural(key: str, lang: str = DEFAULT_LANG) -> bool:
    return key in texts(lang).plurals


def has(key: str, lang: str = DEFAULT_LANG) -> bool:
    return key in catalog(lang)
