"""A domain error as the person reads it: the most specific translated text, params filled in.

Used by the error router (handlers/errors.py), by the areas that re-ask a typed value after
a refusal, and by the Mini App's JSON answers (handlers/webapp/api.py)."""

from __future__ import annotations

from typing import Any

from handlers.ui.i18n import has, t
from services.errors import DomainError, ValidationError


def _param_text(key: str, value: Any, lang: str) -> Any:
    if key == "field" and isinstance(value, str):
        return t(f"field.{value}", lang)
    if key == "missing" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def error_text(exc: DomainError, lang: str) -> str:
    """The most specific translated text for an error, with its params filled in."""
    params = {k: _param_text(k, v, lang) for k, v in exc.params.items()}
    candidates = [exc.key]
    if isinstance(exc, ValidationError):
        candidates += [f"invalid.{exc.field}", "error.validation"]
    candidates.append(type(exc).key)
    for key in candidates:
        if has(key, lang) or has(key):
            return "⚠️ " + t(key, lang, **params)
    return "⚠️ " + t("error.domain", lang)
