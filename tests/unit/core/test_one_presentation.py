"""One presentation (issue 19): a bilingual name is picked in one place, dates are drawn by
one formatter.

(a) no hand-written language pick (``lang == "en"``, ``"en" != lang``, ``lang in ("en",)``...)
    in bot/, handlers/ or services/: a bilingual name goes through ``services.dto.label``,
    the only comparison with a language code; a text through the catalogs (``t()``); a
    number or a date through handlers/ui/fmt.py;
(b) no ``strftime`` in bot/ or handlers/: what a person reads is dated by handlers/ui/fmt.py
    in the reader's locale (Babel), never by a pattern written by hand.

Found with ``ast``, so any spelling of the comparison counts.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CODES = {"en", "ru"}
THE_HELPER = ("services/dto.py", "label")

# Digest and reminder payloads are still dicts read by key; the typed payload classes
# (issue 19, "one typed payload class per outbox kind") read their names through `label`.
# When they land, these picks are gone: empty this table (the test below insists).
NOT_YET: dict[str, int] = {}


def _sources(*folders: str) -> list[Path]:
    return sorted(p for d in folders for p in (ROOT / d).rglob("*.py"))


def _is_code(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in CODES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_code(e) for e in node.elts)
    return False


def language_picks() -> list[str]:
    """file:line of every comparison with a language code outside the one helper."""
    found = []
    for path in _sources("bot", "handlers", "services"):
        where = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = {
            id(n)
            for top in tree.body  # the module's own function, not a method of that name
            if isinstance(top, ast.FunctionDef) and (where, top.name) == THE_HELPER
            for n in ast.walk(top)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and id(node) not in skip:
                if any(_is_code(x) for x in (node.left, *node.comparators)):
                    found.append(f"{where}:{node.lineno}")
    return found


def test_no_hand_written_language_pick():
    picks = Counter(where.split(":")[0] for where in language_picks())
    left = {f: n for f, n in picks.items() if NOT_YET.get(f) != n}
    stale = {f: n for f, n in NOT_YET.items() if picks.get(f) != n}
    assert not left, (
        "pick a bilingual name with services.dto.label(lang, text, text_en), a text with "
        f"t(), a number or date with handlers/ui/fmt: {sorted(language_picks())}"
    )
    assert not stale, f"these files changed: update NOT_YET to {dict(picks)} (empty, ideally)"


def test_the_pick_check_sees_every_spelling(tmp_path):
    """(a guard: the scan must see the spellings it is meant to forbid)"""
    code = """
a = x if lang == "en" else y
b = "en" != lang
c = lang in ("en", "de")
d = label(lang, x, x_en) if lang else None
"""
    tree = ast.parse(code)
    hits = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Compare) and any(_is_code(x) for x in (n.left, *n.comparators))
    ]
    assert sorted(hits) == [2, 3, 4]


def test_the_one_helper_is_the_pick():
    tree = ast.parse((ROOT / THE_HELPER[0]).read_text(encoding="utf-8"))
    (helper,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "label"]
    assert any(isinstance(n, ast.Compare) and _is_code(n.comparators[0]) for n in ast.walk(helper))


def test_no_date_pattern_written_by_hand():
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in _sources("bot", "handlers")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "strftime"
    ]
    assert not found, f"date what a person reads with handlers/ui/fmt (Babel): {found}"
