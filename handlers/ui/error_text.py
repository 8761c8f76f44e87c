"""A domain error as the person reads it: the most specific translated text, params filled in.

Used by the error router (handlers/errors.py), by the areas that re-ask a typed value after
a refusal, and by the Mini App's JSON answers (handlers/webapp/api.py)."""

from __future__ import annotations

from typing import Any

from handlers.ui.i18n import has, t
from services.dto import label
from services.errors import DomainError, ValidationError


def _param_text(key: str, value: Any, lang: str) -> Any:
    if key == "field" and isinstance(value, str):
        return t(f"field.{value}", lang)
    if key == "missing" and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def error_text(exc: DomainError, lang: str) -> str:
    """The most specific translated text for an error, with its params filled in. A name
    given with its English one (``stage`` and ``stage_en``) is read in the reader's
    language (services.dto.label: the configured name when there is no English one)."""
    raw = {
        k: label(lang, v, exc.params.get(f"{k}_en")) if isinstance(v, str) else v
        for k, v in exc.params.items()
    }
    params = {k: _param_text(k, v, lang) for k, v in raw.items()}
    candidates = [exc.key]
    if isinstance(exc, ValidationError):
        candidates += [f"invalid.{exc.field}", "error.validation"]
    candidates.append(type(exc).key)
    for key in candidates:
        if has(key, lang) or has(key):
            return "⚠️ " + t(key, lang, **params)
    return "⚠️ " + t("error.domain", lang)
