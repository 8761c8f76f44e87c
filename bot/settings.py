"""Application settings, read from the environment and `.env` (pydantic-settings).

Every field here is documented in `.env.example`; keep the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    PositiveInt,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.sales.pipeline_config import DEFAULT_FILE as DEFAULT_PIPELINES_FILE
from storage.db import PoolSettings
from storage.enums import Role

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError("one of " + ", ".join(LOG_LEVELS))
    return level


class Settings(BaseSettings):
    """Numbers carry their unit and range (pydantic constraints, `description` says them);
    `voronka` reports a bad value as one line naming the setting (bot/cli.py)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    bot_token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///./data/voronka.db"
    # storage/sqlite_driver.py, or SQLAlchemy's stock aiosqlite adapter (storage/db.py).
    sqlite_driver: Literal["voronka", "aiosqlite"] = "voronka"
    # PostgreSQL only: the connection pool of each process (storage/db.py PoolSettings).
    db_pool_size: int = Field(10, ge=1, le=1000, description="connections, 1-1000")
    db_max_overflow: int = Field(0, ge=0, le=1000, description="connections, 0-1000")
    db_pool_timeout: float = Field(10, gt=0, le=600, description="seconds, above 0 and <= 600")
    db_pool_recycle: float = Field(
        1800, ge=-1, le=86400, description="seconds, -1 (never) to 86400"
    )
    db_pool_pre_ping: bool = False
    admin_ids: Annotated[list[PositiveInt], NoDecode] = Field(default_factory=list)
    timezone: str = "Europe/Moscow"
    pipelines_file: Path = DEFAULT_PIPELINES_FILE
    log_level: Annotated[str, AfterValidator(_log_level)] = "INFO"
    default_language: Literal["ru", "en"] = "ru"
    redis_url: str | None = None
    telegram_api_url: str | None = None
    invite_ttl_hours: int = Field(72, ge=1, le=8760, description="hours, 1-8760")
    # The client's side (issue 25): invite links from deal cards; strangers' requests.
    client_invite_ttl_hours: int = Field(72, ge=1, le=8760, description="hours, 1-8760")
    client_requests: bool = False
    throttle_seconds: float = Field(0.3, ge=0, le=60, description="seconds, 0-60")
    # Reminder engine (bot/scheduler.py, services/outbox/queue.py)
    reminder_sweep_seconds: float = Field(10, ge=0.5, le=3600, description="seconds, 0.5-3600")
    reminder_lease_seconds: float = Field(20, ge=5, le=3600, description="seconds, 5-3600")
    reminder_late_minutes: float = Field(10, ge=0, le=10080, description="minutes, 0-10080")
    telegram_rate_per_second: float = Field(
        29.0, gt=0, le=1000, description="messages per second, above 0 and at most 1000"
    )
    telegram_send_concurrency: int = Field(4, ge=1, le=100, description="messages, 1-100")
    escalation_delay_minutes: float = Field(60, ge=0, le=43200, description="minutes, 0-43200")
    # First response and distribution of new leads, daily norms (issue 26).
    work_hours: str = "09:00-19:00"
    work_days: str = "mon-fri"
    first_response_minutes: float = Field(15, ge=0, le=10080, description="minutes, 0-10080")
    lead_distribution: Literal["round_robin", "least_loaded"] = "round_robin"
    norms: str = ""
    installment_grace_days: int = Field(3, ge=0, le=365, description="days, 0-365")
    installment_reminder_days: int = Field(3, ge=0, le=365, description="days, 0-365")
    measure_remind_before_minutes: float = Field(60, ge=0, le=10080, description="minutes, 0-10080")
    summary_hour: int = Field(9, ge=0, le=23, description="an hour of the day, 0-23")
    stale_days: int = Field(7, ge=1, le=365, description="days, 1-365")
    scan_minutes: float = Field(5, ge=0.1, le=1440, description="minutes, 0.1-1440")
    # Backups (services/backups.py, `voronka backup` / `restore`): a nightly copy at
    # BACKUP_AT (TIMEZONE; "off" for none) into BACKUP_DIR, keeping the newest of the last
    # BACKUP_KEEP_DAILY days and BACKUP_KEEP_WEEKLY weeks.
    backup_dir: Path = Path("./data/backups")
    backup_at: str = "03:30"
    backup_keep_daily: int = Field(7, ge=1, le=366, description="days, 1-366")
    backup_keep_weekly: int = Field(4, ge=0, le=520, description="weeks, 0-520")
    # Voronka's own copy of every file people send (bot/files.py), content-addressed.
    store_files: bool = True
    files_dir: Path = Path("./data/files")
    # Messages to clients in their own Telegram (issue 25) wait out these local hours
    # (TIMEZONE; "HH:MM-HH:MM", may cross midnight; "off": none).
    client_quiet_hours: str = "21:00-09:00"
    # Client chats through Telegram Business (services/intake/business.py): off = ignore them.
    business_capture: bool = True
    # Whose Business chats are recorded (roles, comma-separated); others are told so.
    business_roles: str = "manager,leader,admin"
    # Webhook mode (`voronka webhook`) and the lead intake API on the same HTTP server.
    webhook_base_url: str | None = None
    webhook_path: str = "/telegram/webhook"
    webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(8080, ge=1, le=65535, description="a TCP port, 1-65535")
    intake_tokens: SecretStr | None = None
    intake_rate_limit: int = Field(
        30, ge=0, le=100_000, description="requests per minute, 0-100000 (0: no limit)"
    )
    intake_manager_ids: Annotated[list[PositiveInt], NoDecode] = Field(default_factory=list)
    # The Mini App (board and dashboard): its public https address (served at /app/ on
    # WEBHOOK_HOST:WEBHOOK_PORT by `voronka webhook`, and by `voronka run` when this is set),
    # and how long a Telegram initData stays valid.
    web_app_url: str | None = None
    web_app_max_age: int = Field(
        86400, ge=60, le=604_800, description="seconds, 60-604800 (a week)"
    )
    # Digests to leaders (services/reports/digests.py), in TIMEZONE.
    digest_daily_at: str = "08:30"
    digest_weekly_at: str = "Mon 09:00"

    @field_validator("admin_ids", "intake_manager_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            if not all(p.isdigit() for p in parts):
                raise ValueError("Telegram user ids (numbers) separated by commas")
            return [int(p) for p in parts]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("business_roles")
    @classmethod
    def _check_roles(cls, value: str) -> str:
        parts = [p.strip().lower() for p in value.replace(";", ",").split(",") if p.strip()]
        known = {r.value for r in Role}
        if not all(p in known for p in parts):
            raise ValueError("roles separated by commas: " + ", ".join(sorted(known)))
        return ",".join(parts)

    @field_validator("work_hours", "work_days", "norms", "client_quiet_hours")
    @classmethod
    def _check_policy_text(cls, value: str, info: ValidationInfo) -> str:
        """Working hours and days, daily norms, the clients' quiet hours: parsed as the
        policy will parse them (each parser's ValueError says what is expected)."""
        from services.policy import parse_norms, parse_quiet_hours
        from services.worktime import parse_days, parse_hours

        parsers = {
            "work_hours": parse_hours,
            "work_days": parse_days,
            "norms": parse_norms,
            "client_quiet_hours": parse_quiet_hours,
        }
        parsers[str(info.field_name)](value)
        return value.strip()

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

    @field_validator("backup_at")
    @classmethod
    def _check_backup_at(cls, value: str) -> str:
        from services.errors import ValidationError as Invalid
        from services.reports.digests import parse_time

        value = value.strip()
        if value.lower() in ("off", ""):
            return "off"
        try:
            parse_time(value)
        except Invalid as exc:
            raise ValueError("a time of day as HH:MM, e.g. 03:30, or off") from exc
        return value

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

    def db_pool(self) -> PoolSettings:
        return PoolSettings(
            size=self.db_pool_size,
            overflow=self.db_max_overflow,
            timeout=self.db_pool_timeout,
            recycle=self.db_pool_recycle,
            pre_ping=self.db_pool_pre_ping,
        )

    def require_token(self) -> str:
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise MissingSetting("BOT_TOKEN")
        return self.bot_token.get_secret_value().strip()


class MissingSetting(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
