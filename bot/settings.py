"""Application settings, read from the environment and `.env` (pydantic-settings).

Every field here is documented in `.env.example`; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PIPELINES_FILE = PROJECT_ROOT / "config" / "pipelines" / "default.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    bot_token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./data/voronka.db"
    admin_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    timezone: str = "Europe/Moscow"
    pipelines_file: Path = DEFAULT_PIPELINES_FILE
    log_level: str = "INFO"
    default_language: str = "ru"
    redis_url: str | None = None
    telegram_api_url: str | None = None
    invite_ttl_hours: int = 72
    throttle_seconds: float = 0.3

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            return [int(p) for p in parts]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                             "Europe/Moscow)") from exc
        return value

    def require_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise MissingSetting("BOT_TOKEN")
        return self.bot_token.get_secret_value().strip()


class MissingSetting(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
