"""Domain errors. Each carries a message key (and params) a front-end translates.

Handlers never format these themselves: one error router maps them to a reply.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    key: str = "error.domain"

    def __init__(self, key: str | None = None, /, **params: Any) -> None:
        self.key = key or self.key
        self.params = params
        super().__init__(f"{self.key} {params}" if params else self.key)


class NotFound(DomainError):
    key = "error.not_found"

    def __init__(self, entity: str, ident: object = None) -> None:
        super().__init__(f"error.not_found.{entity}", entity=entity, ident=ident)
        self.entity = entity


class PermissionDenied(DomainError):
    key = "error.permission_denied"

    def __init__(self, action: str = "", **params: Any) -> None:
        super().__init__(self.key, action=action, **params)
        self.action = action


class StaleVersion(DomainError):
    key = "error.stale_version"

    def __init__(self, entity: str = "deal", current: int | None = None) -> None:
        super().__init__(self.key, entity=entity, current=current)
        self.current = current


class RuleViolation(DomainError):
    """A pipeline or workflow rule refused the operation; `rule` says which."""

    key = "error.rule"

    def __init__(self, rule: str, **params: Any) -> None:
        super().__init__(f"rule.{rule}", rule=rule, **params)
        self.rule = rule


class FieldRequired(RuleViolation):
    """The target stage needs fields the deal lacks: `fields` names them in the stage's
    order (the first is asked first). Caught by type, never by the rule's name."""

    def __init__(self, fields: list[str], **params: Any) -> None:
        super().__init__("field_required", field=fields[0], fields=list(fields), **params)
        self.fields = list(fields)

    @property
    def field(self) -> str:
        return self.fields[0]


class ValidationError(DomainError):
    """Input was wrong; `field` says which, `code` why."""

    key = "error.validation"

    def __init__(self, field: str, code: str = "invalid", **params: Any) -> None:
        super().__init__(f"invalid.{field}.{code}", field=field, code=code, **params)
        self.field = field
        self.code = code
