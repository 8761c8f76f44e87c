"""Telegram front-end: one Router per feature; `routers()` gives them in dispatch order."""

from __future__ import annotations

import importlib

from aiogram import Router

# Feature modules, each exposing `router` (staff-only). Modules that do not exist yet
# are skipped, so features can land one at a time.
FEATURES = ("deals", "leads", "team", "tasks", "funnel", "imports")


def routers() -> list[Router]:
    """Routers in order. Routers are module singletons; each new Dispatcher (the tests
    build one per test, production one per process) takes them over from the last."""
    from handlers import errors, start
    from handlers.filters import Staff

    result: list[Router] = [errors.router, start.access, start.menu]
    for name in FEATURES:
        try:
            module = importlib.import_module(f"handlers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"handlers.{name}":
                raise
            continue
        router: Router = module.router
        if not getattr(router, "_staff_only", False):
            router.message.filter(Staff())
            router.callback_query.filter(Staff())
            router._staff_only = True  # type: ignore[attr-defined]
        result.append(router)
    result.append(start.strangers)
    for router in result:
        router._parent_router = None  # detach from a previous Dispatcher
    return result
