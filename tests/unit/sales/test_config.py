"""Pipelines configuration: the shipped files load; broken ones say where and what."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.sales.pipeline_config import ConfigError, load_config, parse_config
from storage.enums import StageKind

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config" / "pipelines"
DEFAULT = (CONFIG_DIR / "default.toml").read_text(encoding="utf-8")


def edit(old: str, new: str, text: str = DEFAULT) -> str:
    """Replace one exact snippet; fail loudly if the sample file no longer has it."""
    assert text.count(old) == 1, f"snippet not found exactly once: {old!r}"
    return text.replace(old, new)


def drop_stage(code: str, text: str = DEFAULT) -> str:
    """Remove the first [[pipelines.stages]] block with this code (blocks end at a blank line)."""
    pattern = re.compile(r"\n *\[\[pipelines\.stages\]\]\n *code = \"" + code + r"\"\n(?:.+\n)*")
    result, n = pattern.subn("\n", text, count=1)
    assert n == 1, code
    return result


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, Path("pipelines.toml"))
    assert info.value.problems
    return info.value.problems


def test_default_config_loads() -> None:
    config = load_config(CONFIG_DIR / "default.toml")
    assert [p.role for p in config.pipelines] == [
        "leads",
        "sales",
        "deferred",
        "installments",
        "fulfilment",
        "claims",
    ]
    sales = config.pipeline("sales")
    assert sales.name == "Продажа"
    assert [s.code for s in sales.stages if s.key] == ["measurement_done"]
    scheduled = next(s for s in sales.stages if s.code == "measurement_scheduled")
    assert scheduled.requires == ("measurement_at", "address")
    assert scheduled.task is not None and scheduled.task.to_role == "head_measurer"
    assert [r.code for r in config.loss_reasons if r.conditional] == ["thinking"]


def test_won_sale_links_its_order_and_installment_copy() -> None:
    config = load_config(CONFIG_DIR / "default.toml")
    won = next(s for s in config.pipeline("sales").stages if s.code == "won")
    assert [(link.to, link.when) for link in won.links] == [
        ("installments", "with_installments"),
        ("fulfilment", "always"),
    ]
    assert "files" in won.links[1].carry and "items" in won.links[1].carry
    extras = won.extras()
    assert extras is not None and [x["to"] for x in extras["links"]] == [
        "installments",
        "fulfilment",
    ]
    stages = {s.code: s for s in config.pipeline("fulfilment").stages}
    job = stages["installation_scheduled"].job
    assert job is not None and job.photos_before == 1 and len(job.checklist) == 6
    assert stages["installed"].final_payment_percent == 30
    assert stages["accepted"].debt_blocks and stages["accepted"].kind == StageKind.WON


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'to = "fulfilment"',
            'to = "fulfilmnt"',
            'pipelines[1] "sales" > stages[6] "won" > links[1] > to: there is no pipeline '
            '"fulfilmnt" in this file (pipelines: leads, deferred, installments, fulfilment, '
            "claims)",
        ),
        (
            'to = "fulfilment"',
            'to = "sales"',
            'pipelines[1] "sales" > stages[6] "won" > links[1] > to: a deal cannot link into '
            "its own pipeline",
        ),
        (
            'to = "fulfilment"',
            'to = "installments"',
            'pipelines[1] "sales" > stages[6] "won" > links[1] > to: "installments" is '
            "linked twice from this stage",
        ),
    ],
)
def test_bad_link_is_explained(old: str, new: str, expected: str) -> None:
    assert problems(edit(old, new)) == [expected]


def test_link_carrying_an_unknown_field_is_refused() -> None:
    text = edit(
        'carry = ["client", "manager", "amount", "need", "address", "items", "files"]',
        'carry = ["client", "colour"]',
    )
    [problem] = problems(text)
    assert problem.startswith('pipelines[1] "sales" > stages[6] "won" > links[1]')
    assert "unknown field(s) ['colour']" in problem and "allowed:" in problem


def test_b2b_config_loads() -> None:
    config = load_config(CONFIG_DIR / "b2b.toml")
    assert config.company.name == "ПромСнаб"
    assert {p.role for p in config.pipelines} == {"leads", "sales", "custom", "refusal"}
    assert config.pipeline("regular_clients").strict is False


def test_every_shipped_file_loads() -> None:
    files = sorted(CONFIG_DIR.glob("*.toml"))
    assert len(files) >= 2
    for path in files:
        load_config(path)


def test_bad_stage_kind_names_the_field_path() -> None:
    [problem] = problems(edit('kind = "frozen"', 'kind = "melted"'))
    assert 'pipelines[1] "sales"' in problem
    assert 'stages[7] "conditional_refusal"' in problem
    assert problem.split(":")[0].endswith("kind")
    for kind in StageKind:
        assert kind.value in problem  # says what is allowed


def test_toml_syntax_error_names_the_line() -> None:
    broken = edit('name = "Продажа"', 'name = "Продажа')
    line = DEFAULT.splitlines().index('name = "Продажа"') + 1
    [problem] = problems(broken)
    assert problem.startswith("TOML syntax")
    assert f"line {line}" in problem


def test_duplicate_stage_codes_are_refused() -> None:
    [problem] = problems(edit('code = "measurer_assigned"', 'code = "measurement_scheduled"'))
    assert 'pipelines[1] "sales"' in problem
    assert "repeat" in problem and "measurement_scheduled" in problem


def test_unknown_required_field_is_refused() -> None:
    [problem] = problems(edit('requires = ["amount"]', 'requires = ["colour"]'))
    assert 'stages[1] "proposal_sent"' in problem
    assert "colour" in problem
    assert "amount" in problem and "measurement_at" in problem  # lists what is allowed


def test_pipeline_without_lost_stage_is_refused() -> None:
    text = drop_stage("lost")
    # The first "lost" block is the Sales one; Deferred still has its own.
    [problem] = problems(text)
    assert 'pipelines[1] "sales"' in problem
    assert "lost stage" in problem


def test_two_frozen_stages_are_refused() -> None:
    text = edit('name_en = "Contract signed"\n', 'name_en = "Contract signed"\n  kind = "frozen"\n')
    [problem] = problems(text)
    assert 'pipelines[1] "sales"' in problem
    assert "at most one frozen stage" in problem


@pytest.mark.parametrize("role", ["leads", "sales"])
def test_missing_leads_or_sales_pipeline_is_refused(role: str) -> None:
    [problem] = problems(edit(f'role = "{role}"', 'role = "custom"'))
    assert f'a pipeline with role = "{role}" is required' in problem


def test_several_problems_are_all_reported() -> None:
    text = edit('requires = ["amount"]', 'requires = ["colour"]')
    text = edit('kind = "frozen"', 'kind = "melted"', text)
    found = problems(text)
    assert len(found) == 2
    assert any("colour" in p for p in found) and any("melted" in p or "kind" in p for p in found)


def test_unknown_key_is_refused_not_ignored() -> None:
    [problem] = problems(edit("  key = true\n", '  key = true\n  colour = "red"\n'))
    assert 'stages[4] "measurement_done" > colour' in problem


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.toml")
    assert "cannot read" in info.value.problems[0]
    assert "missing.toml" in str(info.value)
