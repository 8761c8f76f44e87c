"""Architecture checks the import-linter contracts (pyproject.toml) cannot express.

- services/ and storage/ never import the Telegram front-end: they must work without aiogram
  (and without handlers/ or bot/, the aiogram side). The walk counts imports inside functions,
  under ``if TYPE_CHECKING``, relative ones and ``importlib.import_module("...")`` with a
  literal name.
- No import cycle between any two modules of bot/, handlers/, services/ and storage/ — an
  import inside a function counts (it is how a loop gets hidden), one under
  ``if TYPE_CHECKING:`` does not (it never runs). Nor between their subpackages (a
  package-level cycle, e.g. handlers.errors <-> handlers.deals).
- Only the assembler (handlers/routers.py) imports an area's router module.
- No module uses another module's private name: ``from x import _name``, ``import x._mod``
  from outside ``x``, or ``mod._name`` where ``mod`` is an imported module.
- No ``# noqa: E402`` (an import below code) outside the Alembic migrations.

Each checker also runs against synthetic sources here, so a checker that stopped finding
anything would fail its own test.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("bot", "handlers", "services", "storage")
GUARDED = ("services", "storage")
FORBIDDEN = ("aiogram", "handlers", "bot")
MIGRATIONS = PROJECT_ROOT / "storage" / "migrations"


def _package_of(path: Path, root: Path) -> list[str]:
    """The package a relative import in this file starts from (a package's own, for __init__)."""
    return list(path.relative_to(root).with_suffix("").parts[:-1])


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, runtime_only: bool) -> Iterator[ast.AST]:
    """ast.walk, optionally skipping the bodies of ``if TYPE_CHECKING:`` (never executed)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if runtime_only and isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _walk(other, runtime_only)
            continue
        yield from _walk(child, runtime_only)


def _absolute(node: ast.ImportFrom, package: list[str]) -> str:
    if not node.level:
        return node.module or ""
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(
    source: str, package: list[str], runtime_only: bool = False
) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the source.

    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a module).
    """
    for node in _walk(ast.parse(source), runtime_only):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
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


def project_files(*dirs: str) -> list[Path]:
    """The .py files of the given top-level packages, the Alembic migrations left out."""
    return sorted(
        p
        for d in dirs
        for p in (PROJECT_ROOT / d).rglob("*.py")
        if not p.is_relative_to(MIGRATIONS)
    )


def guarded_files() -> list[Path]:
    return project_files(*GUARDED)


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


# --- no import cycles ----------------------------------------------------------------------


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the project modules it imports at run time.

    ``sources`` maps a module name to (source, is_package). An import names the deepest
    project module it reaches: ``from a import b`` is an edge to ``a.b`` when that is a
    module, else to ``a``.
    """
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        package = module.split(".") if is_package else module.split(".")[:-1]
        edges: set[str] = set()
        for _, name in imported_modules(source, package, runtime_only=True):
            while name and name not in sources:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _project_sources() -> dict[str, tuple[str, bool]]:
    return {
        _module_of(path): (path.read_text(encoding="utf-8"), path.stem == "__init__")
        for path in project_files(*PACKAGES)
    }


def test_no_import_cycles() -> None:
    graph = import_graph(_project_sources())
    assert len(graph) >= 40, "the walk found too few modules: wrong root?"
    loops = cycles(graph)
    assert not loops, "import cycles (modules that import each other, directly or not):\n" + (
        "\n".join(" <-> ".join(loop) for loop in loops)
    )


def test_the_cycle_checker_catches_a_loop_hidden_at_the_bottom_or_in_a_function() -> None:
    sources = {
        "services": ("", True),
        "services.a": ("from services import b\n", False),
        "services.b": ("def f():\n    from services.c import x\n", False),
        "services.c": ("X = 1\nfrom services import a  # noqa: E402\n", False),
        "services.d": ("from services import a\n", False),
    }
    assert cycles(import_graph(sources)) == [["services.a", "services.b", "services.c"]]


def test_the_cycle_checker_ignores_type_checking_imports() -> None:
    sources = {
        "services.a": ("from services.b import B\n", False),
        "services.b": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from services.a import A\n",
            False,
        ),
    }
    assert cycles(import_graph(sources)) == []


# --- no import cycles between packages ----------------------------------------------------


def package_of(module: str) -> str:
    """The subpackage (or top-level module) of bot/handlers/services/storage a module is in:
    handlers.deals.router -> handlers.deals, handlers.errors -> handlers.errors."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto packages (imports inside one package dropped)."""
    folded: dict[str, set[str]] = {}
    for module, edges in graph.items():
        here = package_of(module)
        targets = folded.setdefault(here, set())
        targets.update(p for p in map(package_of, edges) if p != here)
    return folded


def test_no_import_cycles_between_packages() -> None:
    graph = package_graph(import_graph(_project_sources()))
    assert len(graph) >= 20, "the walk found too few packages: wrong root?"
    loops = cycles(graph)
    assert not loops, "packages that import each other (draw what both need lower down):\n" + (
        "\n".join(" <-> ".join(loop) for loop in loops)
    )


def test_the_package_cycle_checker_catches_a_loop_between_modules_of_two_packages() -> None:
    sources = {
        "handlers.errors": ("from handlers.deals import views\n", False),
        "handlers.deals": ("", True),
        "handlers.deals.views": ("X = 1\n", False),
        "handlers.deals.router": ("from handlers.errors import error_text\n", False),
        "handlers.ui.fmt": ("", False),
    }
    graph = import_graph(sources)
    assert cycles(graph) == []  # no loop between modules, one between their packages
    assert cycles(package_graph(graph)) == [["handlers.deals", "handlers.errors"]]


# --- only the assembler imports a router ---------------------------------------------------

ASSEMBLER = "handlers.routers"


def router_imports(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Imports of an area's router module (handlers.<area>.router) outside the assembler."""
    found = []
    for module, (source, is_package) in sorted(sources.items()):
        if module == ASSEMBLER:
            continue
        package = module.split(".") if is_package else module.split(".")[:-1]
        for line, name in imported_modules(source, package):
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "handlers" and parts[2] == "router":
                found.append(f"{module} line {line}: {name}")
    return found


def test_only_the_assembler_imports_a_router_module() -> None:
    found = router_imports(_project_sources())
    assert not found, "only handlers/routers.py imports router modules:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from handlers.deals import router\n", True),
        ("from handlers.deals.router import refresh_in_chat\n", True),
        ("def f():\n    import handlers.tasks.router\n", True),
        ("from handlers.deals import views\n", False),
        ("from handlers.ui import deal_card\n", False),
    ],
)
def test_the_router_import_checker(source: str, caught: bool) -> None:
    sources = {
        "bot.webapp": (source, False),
        ASSEMBLER: ("from handlers.deals import router\n", False),
    }
    assert bool(router_imports(sources)) == caught, source


# --- no other module's private names -------------------------------------------------------


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_private_module(target: str, package: list[str]) -> bool:
    """A private module may be imported from inside the package that holds it."""
    parent = target.rpartition(".")[0].split(".")
    return package[: len(parent)] == parent


def private_uses(source: str, package: list[str], modules: set[str]) -> list[str]:
    """Uses of another module's private names; ``modules`` are the known module names."""
    tree = ast.parse(source)
    found: list[str] = []
    module_aliases: set[str] = set()  # local names bound to a module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if any(map(_private, parts)) and not _own_private_module(alias.name, package):
                    found.append(f"line {node.lineno}: import {alias.name}")
                module_aliases.add(alias.asname or parts[0])
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                target = f"{base}.{alias.name}" if base else alias.name
                if target in modules:
                    module_aliases.add(alias.asname or alias.name)
                if _private(alias.name) and not (
                    target in modules and _own_private_module(target, package)
                ):
                    found.append(f"line {node.lineno}: from {base} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = _dotted(node.value)
            if owner in module_aliases or (
                owner.partition(".")[0] in module_aliases and owner in modules
            ):
                found.append(f"line {node.lineno}: {owner}.{node.attr}")
    return found


def _dotted(node: ast.expr) -> str:
    """``a.b.c`` for a chain of plain attribute lookups on a name, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def test_no_module_uses_another_modules_private_names() -> None:
    sources = _project_sources()
    modules = set(sources)
    found: list[str] = []
    for module, (source, is_package) in sorted(sources.items()):
        package = module.split(".") if is_package else module.split(".")[:-1]
        found.extend(f"{module} {use}" for use in private_uses(source, package, modules))
    assert not found, "private names used from another module (make them public):\n" + (
        "\n".join(found)
    )


SYNTHETIC_MODULES = {"services", "services.sales", "services.sales.deals", "services.work"}


@pytest.mark.parametrize(
    "source",
    [
        "from services.sales import deals\nasync def f(uow):\n    await deals._enter(uow)\n",
        "from services.sales import deals as d\nx = d._load\n",
        "import services.sales.deals\nservices.sales.deals._finish()\n",
        "import services.sales.deals as deals\ndeals._apply_fields()\n",
        "from services.sales.deals import _enter\n",
        "from services.sales.leads import _insert_lead as insert_lead\n",
        "from ..sales.deals import _enter\n",
        "def f():\n    from services.sales.deals import _enter\n",
        "from aiogram.dispatcher import _private\n",
        "import services.sales._core\n",
    ],
)
def test_the_private_name_checker_catches(source: str) -> None:
    assert private_uses(source, ["services", "work"], SYNTHETIC_MODULES), source


@pytest.mark.parametrize(
    "source",
    [
        "class A:\n    def f(self):\n        return self._x + type(self)._y\n",
        "class A:\n    @classmethod\n    def f(cls):\n        return cls._x\n",
        "def f(card):\n    return card._asdict()\n",  # not a module
        "from services.sales import deals\nprint(deals.__name__, deals.enter)\n",
        "from services.sales.deals import enter, __all__\n",
        "_x = 1\nprint(_x)\n",
    ],
)
def test_the_private_name_checker_allows(source: str) -> None:
    assert not private_uses(source, ["services", "work"], SYNTHETIC_MODULES), source


def test_a_package_may_import_its_own_private_module() -> None:
    modules = {"services.sales", "services.sales._core"}
    assert not private_uses("from services.sales import _core\n", ["services", "sales"], modules)
    assert private_uses("from services.sales import _core\n", ["services", "work"], modules)


# --- no imports below code -----------------------------------------------------------------

NOQA_E402 = re.compile(r"#\s*noqa\b[^#]*\bE402\b", re.IGNORECASE)


def noqa_e402_lines(source: str) -> list[int]:
    """Lines whose comment silences E402 (module level import not at top of file)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [
        tok.start[0]
        for tok in tokens
        if tok.type == tokenize.COMMENT and NOQA_E402.search(tok.string)
    ]


def _own_python_files() -> Iterator[Path]:
    """Every .py file of the checkout but the venv, caches, npm packages and migrations."""
    for top, dirs, files in os.walk(PROJECT_ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "data")]
        here = Path(top)
        if here.is_relative_to(MIGRATIONS):
            continue
        yield from (here / f for f in files if f.endswith(".py"))


def test_no_noqa_e402_outside_the_migrations() -> None:
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{line}"
        for path in sorted(_own_python_files())
        for line in noqa_e402_lines(path.read_text(encoding="utf-8"))
    ]
    assert not found, "imports below code (move them up, or break the loop):\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("import os\nx = 1\nimport re  # noqa: E402\n", [3]),
        ("import re  # noqa:E402,F401\n", [1]),
        ("import re  # NOQA: F401, E402 (appended)\n", [1]),
        ("import re  # noqa: F401\n", []),
        ("s = '# noqa: E402'\n", []),
    ],
)
def test_the_noqa_checker(source: str, lines: list[int]) -> None:
    assert noqa_e402_lines(source) == lines
