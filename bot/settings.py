"""Application settings, read from the environment and `.env` (pydantic-settings).

Every field here is documented in `.env.example`; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.sales.pipeline_config import DEFAULT_FILE as DEFAULT_PIPELINES_FILE


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
    # Reminder engine (bot/scheduler.py, services/outbox/queue.py)
    reminder_sweep_seconds: float = 10
    reminder_lease_seconds: float = 300
    reminder_late_minutes: float = 10
    telegram_rate_per_second: float = 29.0
    telegram_send_concurrency: int = 4
    escalation_delay_minutes: float = 60
    installment_grace_days: int = 3
    installment_reminder_days: int = 3
    measure_remind_before_minutes: float = 60
    summary_hour: int = 9
    stale_days: int = 7
    scan_minutes: float = 5
    # Webhook mode (`voronka webhook`) and the lead intake API on the same HTTP server.
    webhook_base_url: str | None = None
    webhook_path: str = "/telegram/webhook"
    webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 8080
    intake_tokens: SecretStr | None = None
    intake_rate_limit: int = 30
    intake_manager_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # The Mini App (board and dashboard): its public https address (served at /app/ on
    # WEBHOOK_HOST:WEBHOOK_PORT by `voronka webhook`, and by `voronka run` when this is set),
    # and how long a Telegram initData stays valid.
    web_app_url: str | None = None
    web_app_max_age: int = Field(default=86400, ge=60)
    # Digests to leaders (services/reports/digests.py), in TIMEZONE.
    digest_daily_at: str = "08:30"
    digest_weekly_at: str = "Mon 09:00"

    @field_validator("admin_ids", "intake_manager_ids", mode="before")
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
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow)"
            ) from exc
        return value

    @field_validator("digest_daily_at")
    @classmethod
    def _check_digest_daily(cls, value: str) -> str:
        from services.errors import ValidationError as Invalid
        from services.reports.digests import parse_time

        try:
            parse_time(value)
        except Invalid as exc:
            raise ValueError("a time of day as HH:MM, e.g. 08:30") from exc
        return value.strip()

    @field_validator("digest_weekly_at")
    @classmethod
    def _check_digest_weekly(cls, value: str) -> str:
        from services.errors import ValidationError as Invalid
        from services.reports.digests import parse_weekly

        try:
            parse_weekly(value)
        except Invalid as exc:
            raise ValueError("a weekday and a time, e.g. Mon 09:00") from exc
        return value.strip()

    @field_validator("webhook_path")
    @classmethod
    def _check_webhook_path(cls, value: str) -> str:
        clash = value.startswith(("/api/", "/app/")) or value in ("/healthz", "/app")
        if not value.startswith("/") or clash:
            raise ValueError("must start with / and not clash with /api/, /app/ or /healthz")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        import re

        if value is None or not value.get_secret_value():
            return None  # an empty line in .env means "not set"
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("1-256 characters A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @field_validator("web_app_url")
    @classmethod
    def _check_web_app_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # an empty line in .env means "not set"
        value = value.strip()
        if not value.startswith(("https://", "http://")):
            raise ValueError("an http(s) address, e.g. https://crm.example.com/app/")
        return value

    @field_validator("intake_tokens")
    @classmethod
    def _check_intake_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        from services.intake.api import parse_tokens

        if value is not None:
            parse_tokens(value.get_secret_value())
        return value

    def require_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise MissingSetting("BOT_TOKEN")
        return self.bot_token.get_secret_value().strip()


class MissingSetting(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
