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
    """A pipeline or workflow rule refused the operation; `rule` says which (its text is
    ``rule.<rule>``). The outcomes a caller acts on are subclasses below, caught by type:
    their `rule` is fixed, so the texts and the Mini App's ``rule`` field stay as they were."""

    key = "error.rule"
    rule: str = ""

    def __init__(self, rule: str | None = None, /, **params: Any) -> None:
        rule = rule or type(self).rule
        super().__init__(f"rule.{rule}", rule=rule, **params)
        self.rule = rule


class FieldRequired(RuleViolation):
    """The target stage needs fields the deal lacks: `fields` names them in the stage's
    order (the first is asked first). Caught by type, never by the rule's name."""

    rule = "field_required"

    def __init__(self, fields: list[str], **params: Any) -> None:
        super().__init__(field=fields[0], fields=list(fields), **params)
        self.fields = list(fields)

    @property
    def field(self) -> str:
        return self.fields[0]


class MeasurerRequired(RuleViolation):
    """The target stage needs a measurer assigned to the deal (by the head of measurers)."""

    rule = "measurer_required"


class CommentRequired(RuleViolation):
    """This loss reason needs a comment: ask for it, then lose with it."""

    rule = "comment_required"


class DealClosed(RuleViolation):
    """The deal is won or lost: nothing moves it but a reopen."""

    rule = "deal_closed"

    def __init__(self, stage: str, **params: Any) -> None:
        super().__init__(stage=stage, **params)


class ReasonRequired(RuleViolation):
    """A lost stage is entered only through "Lost" with a reason from the list."""

    rule = "reason_required"


class StrictOrder(RuleViolation):
    """A strict pipeline (or stage) goes one step at a time; `expected` is the next stage
    forward ("" when the move went back more than one)."""

    rule = "no_skipping"

    def __init__(self, stage: str, expected: str, **params: Any) -> None:
        super().__init__(stage=stage, expected=expected, **params)


class DuplicateLead(RuleViolation):
    """The client already has an open lead (`lead_ids`); creating another needs a
    confirmation (`allow_duplicate`)."""

    rule = "duplicate"

    def __init__(self, lead_ids: list[int], **params: Any) -> None:
        super().__init__(lead_ids=list(lead_ids), **params)
        self.lead_ids = list(lead_ids)


class QualificationIncomplete(RuleViolation):
    """A lead is converted only with every required question answered yes (`missing`: the
    codes of those that are not)."""

    rule = "qualification_incomplete"

    def __init__(self, missing: list[str], **params: Any) -> None:
        super().__init__(missing=list(missing), **params)
        self.missing = list(missing)


class StageHasDeals(RuleViolation):
    """A pipelines sync would archive a stage that still holds deals or leads."""

    rule = "stage_has_deals"

    def __init__(self, stage: str, name: str, count: int, **params: Any) -> None:
        super().__init__(stage=stage, name=name, count=count, **params)
        self.count = count


class ValidationError(DomainError):
    """Input was wrong; `field` says which, `code` why."""

    key = "error.validation"

    def __init__(self, field: str, code: str = "invalid", **params: Any) -> None:
        super().__init__(f"invalid.{field}.{code}", field=field, code=code, **params)
        self.field = field
        self.code = code
