"""Plural forms and money in both languages (handlers/ui/i18n.py, handlers/ui/fmt.py).

Every plural text of the catalogs is rendered for 1, 2, 5, 11 and 21 in ru and en and must
take the form gettext's rule gives (ru: one / few / many, en: one / other); the digest's
headline is checked word for word for 1, 2 and 5 deals.
"""

from __future__ import annotations

import ast
import string
from zoneinfo import ZoneInfo

import pytest

from handlers.funnel.views import digest_lines
from handlers.ui import fmt
from handlers.ui.i18n import LANGUAGES, catalog, is_plural, t, texts, tn
from services.outbox.payloads import Digest
from tests.factories import ui_sources

COUNTS = (1, 2, 5, 11, 21)
# The plural index each count must get: ru one/few/many, en one/other.
FORM = {"ru": {1: 0, 2: 1, 5: 2, 11: 2, 21: 0}, "en": {1: 0, 2: 1, 5: 1, 11: 1, 21: 1}}
FORMS = {"ru": 3, "en": 2}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def plural_keys() -> list[str]:
    return sorted(texts("ru").plurals)


def test_the_catalogs_have_plural_texts():
    """(a guard: a catalog without plural entries would make the tests below vacuous)"""
    assert {"digest.snapshot", "rule.stage_has_deals", "tasks.summary.stale_item"} <= set(
        plural_keys()
    )


@pytest.mark.parametrize("key", plural_keys())
def test_a_plural_text_is_plural_in_both_languages_with_the_same_placeholders(key):
    missing = [lang for lang in LANGUAGES if key not in texts(lang).plurals]
    assert not missing, f"{key} is plural in ru but not in every language"
    found = {lang: texts(lang).plurals[key] for lang in LANGUAGES}
    wanted = placeholders(found["ru"].forms[0])
    for lang, plural in found.items():
        assert len(plural.forms) == FORMS[lang], (lang, key, plural.forms)
        assert plural.param in wanted, f"{key}: msgid_plural names {plural.param!r}"
        for form in plural.forms:
            assert placeholders(form) == wanted, (lang, key, form)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("key", plural_keys())
def test_every_plural_text_renders_for_1_2_5_11_21(lang, key):
    plural = texts(lang).plurals[key]
    params: dict[str, object] = {name: f"<{name}>" for name in placeholders(plural.forms[0])}
    for n in COUNTS:
        params[plural.param] = n
        text = t(key, lang, **params)
        expected = plural.forms[FORM[lang][n]].format(**params)
        assert text == expected, (lang, key, n, text)
        assert str(n) in text and "{" not in text
        # tn(): the number chooses the form whatever the parameter holds (e.g. "1 260")
        shown = {**params, plural.param: "N"}
        assert tn(key, n, lang, **shown) == plural.forms[FORM[lang][n]].format(**shown)


@pytest.mark.parametrize(
    ("lang", "n", "words"),
    [
        ("ru", 1, "1 сделка"),
        ("ru", 2, "2 сделки"),
        ("ru", 5, "5 сделок"),
        ("ru", 11, "11 сделок"),
        ("ru", 21, "21 сделка"),
        ("ru", 22, "22 сделки"),
        ("en", 1, "1 deal,"),
        ("en", 2, "2 deals,"),
        ("en", 21, "21 deals,"),
    ],
)
def test_the_digest_headline_reads_right(lang, n, words):
    payload = {
        "kind": "daily",
        "since": "2026-01-12T04:00:00+00:00",
        "until": "2026-01-13T05:30:00+00:00",
        "pipeline": "Продажи",
        "pipeline_en": "Sales",
        "active": n,
        "active_amount": 38_000_000,
        "weighted": 12_345_600,
        "won": 1,
        "won_amount": 25_000_000,
    }
    lines = digest_lines(Digest.model_validate(payload), lang, ZoneInfo("Europe/Moscow"))
    headline = next(line for line in lines if line.startswith("📊"))
    if lang == "ru":
        money = "380\u00a0тыс.\u00a0₽, прогноз 123\u00a0тыс.\u00a0₽"
        assert headline == f"📊 В работе («Продажи»): {words}, {money}"
    else:
        assert headline == f"📊 In work (Sales): {words} 380K\u00a0RUB, forecast 123K\u00a0RUB"


def test_tn_takes_the_number_given():
    assert tn("tasks.summary.stale_item", 2, "ru", title="X", days="2") == "• X — 2 дня"
    assert t("tasks.summary.stale_item", "ru", title="X", days=5) == "• X — 5 дней"
    assert t("tasks.summary.stale_item", "en", title="X", days=1) == "• X: 1 day"
    # no number at all: the "many" form, never a crash or a raw key
    assert t("tasks.summary.stale_item", "ru", title="X") == "• X — {days} дней"
    assert catalog("ru")["digest.snapshot"].endswith("прогноз {weighted}")


def test_code_passes_the_number_every_plural_text_needs():
    """A t() call for a plural text must pass the parameter its msgid_plural names,
    or the text falls back to the "many" form for every number."""
    wrong = []
    for path in ui_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "t"):
                continue
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            key = first.value
            if not is_plural(key):
                continue
            names = {kw.arg for kw in node.keywords}
            if None not in names and texts("ru").plurals[key].param not in names:
                wrong.append(f"{path}:{node.lineno}: {key}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("lang", "minor", "plain", "compact"),
    [
        ("ru", 15_000_000, "150\u00a0000\u00a0₽", "150\u00a0тыс.\u00a0₽"),
        ("ru", 100_050, "1\u00a0000,50\u00a0₽", "1\u00a0тыс.\u00a0₽"),
        ("ru", 123_456_700, "1\u00a0234\u00a0567\u00a0₽", "1,2\u00a0млн\u00a0₽"),
        ("en", 15_000_000, "150,000\u00a0RUB", "150K\u00a0RUB"),
        ("en", 100_050, "1,000.50\u00a0RUB", "1K\u00a0RUB"),
        ("en", 123_456_700, "1,234,567\u00a0RUB", "1.2M\u00a0RUB"),
    ],
)
def test_money_in_both_languages(lang, minor, plain, compact):
    assert fmt.money(minor, lang) == plain
    assert fmt.money(minor, lang, compact=True) == compact
    assert fmt.number(1260, lang) == ("1\u00a0260" if lang == "ru" else "1,260")


def test_a_plural_text_in_an_error_message():
    """The error router renders domain errors with t(key, **params): plurals apply there too."""
    assert t("rule.stage_has_deals", "ru", name="Замер", count=1).endswith("в нём 1 сделка.")
    assert t("rule.stage_has_deals", "ru", name="Замер", count=3).endswith("в нём 3 сделки.")
    assert t("rule.stage_has_deals", "en", name="M", count=1).endswith("holds 1 deal.")
