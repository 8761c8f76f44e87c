"""Typed rule outcomes: a caller tells them apart by type, and each keeps the rule name and
the message key (``rule.<name>``) its translated text and the Mini App's ``rule`` field use."""

from __future__ import annotations

import pytest

from handlers.ui.i18n import has
from services.errors import (
    DealClosed,
    DuplicateLead,
    FieldRequired,
    QualificationIncomplete,
    ReasonRequired,
    RuleViolation,
    StageHasDeals,
    StrictOrder,
)

OUTCOMES = [
    (DealClosed("Замер"), "deal_closed"),
    (ReasonRequired(), "reason_required"),
    (StrictOrder("Договор", "КП отправлено"), "no_skipping"),
    (DuplicateLead([7]), "duplicate"),
    (QualificationIncomplete(["region"]), "qualification_incomplete"),
    (StageHasDeals("measured", "Замер", 2), "stage_has_deals"),
    (FieldRequired(["amount", "address"]), "field_required"),
]


@pytest.mark.parametrize(("exc", "rule"), OUTCOMES, ids=[r for _, r in OUTCOMES])
def test_a_typed_outcome_keeps_its_rule_and_text(exc: RuleViolation, rule: str) -> None:
    assert isinstance(exc, RuleViolation)
    assert exc.rule == rule and exc.params["rule"] == rule and exc.key == f"rule.{rule}"
    params = {k: v for k, v in exc.params.items() if k != "rule"}
    assert exc.params == RuleViolation(rule, **params).params  # what the texts are filled with
    for lang in ("ru", "en"):
        assert has(exc.key, lang)


def test_a_plain_rule_violation_is_unchanged() -> None:
    exc = RuleViolation("same_stage", stage="Замер")
    assert exc.rule == "same_stage" and exc.key == "rule.same_stage"
    assert exc.params == {"rule": "same_stage", "stage": "Замер"}
