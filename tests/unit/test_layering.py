"""The domain and storage layers never import the Telegram front-end.

services/ and storage/ must work without aiogram (and without handlers/ or bot/, which
are the aiogram side): a test walks their sources with ``ast`` and fails on any such import,
including imports inside functions, under ``if TYPE_CHECKING``, relative ones and
``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GUARDED = ("services", "storage")
FORBIDDEN = ("aiogram", "handlers", "bot")


def _package_of(path: Path, root: Path) -> list[str]:
    return list(path.relative_to(root).with_suffix("").parts[:-1])


def imported_modules(source: str, package: list[str]) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from . import bot` imports a module too
                yield node.lineno, f"{module}.{alias.name}" if module else alias.name
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value


def is_forbidden(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def violations(source: str, package: list[str]) -> list[str]:
    return [
        f"line {line}: {mod}"
        for line, mod in imported_modules(source, package)
        if is_forbidden(mod)
    ]


def guarded_files() -> list[Path]:
    return sorted(p for d in GUARDED for p in (PROJECT_ROOT / d).rglob("*.py"))


def test_services_and_storage_do_not_import_the_front_end() -> None:
    files = guarded_files()
    assert len(files) >= 10, "the walk found too few files: wrong root?"
    found: list[str] = []
    for path in files:
        problems = violations(path.read_text(encoding="utf-8"), _package_of(path, PROJECT_ROOT))
        found.extend(f"{path.relative_to(PROJECT_ROOT)} {p}" for p in problems)
    assert not found, "services/ and storage/ must not import aiogram, bot or handlers:\n" + (
        "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "import aiogram",
        "import aiogram.types as t",
        "from aiogram.types import Message",
        "from aiogram import Bot, Router",
        "import os, aiogram.filters",
        "from handlers.deals import router",
        "import bot.settings",
        "from bot import settings",
        "def f():\n    from aiogram.utils.keyboard import InlineKeyboardBuilder\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aiogram import Bot\n",
        "from .. import bot",
        "from ..handlers import deals",
        "import importlib\nimportlib.import_module('aiogram.types')",
        "__import__('aiogram')",
    ],
)
def test_the_checker_catches(source: str) -> None:
    assert violations(source, ["services"]), source


@pytest.mark.parametrize(
    "source",
    [
        "import botocore",
        "from handlers_extra import x",
        "import aiogramx",
        "from storage.models import Deal",
        "from . import pipelines",
        "from .bot_rules import x",
        "from services.botlike import y",
    ],
)
def test_the_checker_allows(source: str) -> None:
    assert not violations(source, ["services"]), source
