"""`.env.example` documents every setting, with a comment and its default, and parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from bot.settings import Settings
from tests.factories import ENV_EXAMPLE, env_example_entries

FIELDS = {name.upper(): info for name, info in Settings.model_fields.items()}


def test_every_setting_is_in_env_example() -> None:
    missing = sorted(set(FIELDS) - set(env_example_entries()))
    assert not missing, f".env.example lacks: {', '.join(missing)}"


def test_env_example_has_no_unknown_settings() -> None:
    unknown = sorted(set(env_example_entries()) - set(FIELDS))
    assert not unknown, f".env.example has settings Settings does not know: {unknown}"


@pytest.mark.parametrize("key", sorted(FIELDS))
def test_each_setting_is_explained_with_its_default(key: str) -> None:
    _, _, comment = env_example_entries()[key]
    assert len(comment) > 20, f"{key}: no comment saying what it does"
    assert "Default:" in comment, f"{key}: the comment does not state the default"
    default: Any = FIELDS[key].default
    if default is None:
        assert "not set" in comment, key
    elif default is PydanticUndefined:
        assert "empty" in comment, key  # default_factory: admin_ids
    elif isinstance(default, Path):
        assert "/".join(default.parts[-3:]) in comment, key
    else:
        assert str(default) in comment, f"{key}: default {default!r} not stated"


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in FIELDS:
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("no_settings_env")
def test_copying_env_example_changes_no_default() -> None:
    from_example = Settings(_env_file=ENV_EXAMPLE)
    defaults = Settings(_env_file=None)
    assert from_example.model_dump(exclude={"bot_token"}) == defaults.model_dump(
        exclude={"bot_token"}
    )


@pytest.mark.usefixtures("no_settings_env")
def test_every_example_value_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, (_, value, _) in env_example_entries().items():
        if value:
            monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.admin_ids == [123456789, 987654321]
