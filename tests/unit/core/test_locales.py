"""The ru and en catalogs (handlers/locales/<lang>/LC_MESSAGES/*.po) against the code.

(a) every key the code asks `t()` for exists in both catalogs; an f-string key
    (t(f"deal.ask.{field}")) needs at least one key with its literal prefix;
(b) no user-facing text is written in the code: no string constant in handlers/ or bot/
    contains a Cyrillic letter (texts live in the catalogs);
(c) both catalogs have the same keys (and the same {placeholders} in each text).

Keys are found with `ast`, so calls split over lines and both branches of
`t("a" if x else "b")` count.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.ui.commands import COMMANDS
from handlers.ui.i18n import LANGUAGES, LOCALES_DIR, catalog
from storage.enums import Role
from tests.factories import ui_sources

ROOT = Path(__file__).resolve().parents[3]
CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def _keys(arg: ast.expr) -> Iterator[tuple[str, bool]]:
    """(key, is_prefix) for a t() argument: a literal, an f-string's literal head, or both
    branches of a conditional."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        yield arg.value, False
    elif isinstance(arg, ast.JoinedStr):
        head = ""
        for part in arg.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                break
            head += part.value
        yield head, True
    elif isinstance(arg, ast.IfExp):
        yield from _keys(arg.body)
        yield from _keys(arg.orelse)


def used_keys() -> list[tuple[str, bool, str]]:
    found = []
    for path in ui_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("t", "tn"):
                found += [(key, prefix, _where(path, node)) for key, prefix in _keys(node.args[0])]
    return found


def test_the_scan_finds_keys():
    """(a guard for the test below: a scan that finds nothing proves nothing)"""
    keys = {key for key, prefix, _ in used_keys() if not prefix}
    assert {"menu.title", "access.denied", "team.invite.pick"} <= keys
    assert {"deal.ask.", "role.", "cmd."} <= {k for k, prefix, _ in used_keys() if prefix}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_used_in_code_exists(lang):
    keys = catalog(lang)
    missing = []
    for key, prefix, where in used_keys():
        ok = any(k.startswith(key) for k in keys) if prefix else key in keys
        if not ok:
            missing.append(f"{where}: {key}{'…' if prefix else ''}")
    assert not missing, f"missing in {lang}:\n" + "\n".join(sorted(set(missing)))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_role_and_command_has_a_text(lang):
    """The f-string keys whose values are known: role.<role>, cmd.<command>."""
    keys = catalog(lang)
    wanted = [f"role.{r.value}" for r in Role] + [f"cmd.{name}" for name, _ in COMMANDS]
    wanted.append("cmd.start")
    assert [k for k in wanted if k not in keys] == []


def test_no_user_facing_literals_in_code():
    found = []
    for path in ui_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and CYRILLIC.search(node.value)
            ):
                found.append(f"{_where(path, node)}: {node.value[:50]!r}")
    assert not found, "texts belong in handlers/locales/*.po:\n" + "\n".join(found)


def test_the_literal_check_can_see_cyrillic():
    assert CYRILLIC.search("Готово") and CYRILLIC.search("ё") and not CYRILLIC.search("Done ✅")


def test_both_languages_have_the_same_files_and_keys():
    files = {
        lang: {p.name for p in (LOCALES_DIR / lang / "LC_MESSAGES").glob("*.po")}
        for lang in LANGUAGES
    }
    assert files["ru"] == files["en"]
    ru, en = set(catalog("ru")), set(catalog("en"))
    assert not ru - en, f"only in ru: {sorted(ru - en)}"
    assert not en - ru, f"only in en: {sorted(en - ru)}"


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_both_languages_fill_the_same_placeholders():
    ru, en = catalog("ru"), catalog("en")
    differ = [
        f"{key}: ru {sorted(_placeholders(ru[key]))} en {sorted(_placeholders(en[key]))}"
        for key in sorted(set(ru) & set(en))
        if _placeholders(ru[key]) != _placeholders(en[key])
    ]
    assert not differ, "\n".join(differ)
