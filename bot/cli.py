"""The ``voronka`` command: run the bot, migrate the database, check a pipelines file.

Errors a user can fix (a missing token, a broken pipelines file, an unreachable
database) are printed as one ``error: ...`` line, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from pydantic import ValidationError

from bot.settings import MissingSetting, Settings

log = logging.getLogger("voronka")

EXIT_ERROR = 1
EXIT_USAGE = 2  # bad invocation or settings: fix the command line or .env


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# --- settings and logging ----------------------------------------------------------------


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            info = Settings.model_fields.get(field)
            expected = f" (expected {info.description})" if info and info.description else ""
            name = field.upper() or "settings"
            given = f", got {err['input']!r}" if isinstance(err.get("input"), str) else ""
            message = err["msg"].removeprefix("Value error, ")
            parts.append(f"{name}: {message}{given}{expected}")
        message = "invalid setting " + "; ".join(parts) + " (environment or .env)"
        raise CliError(message, EXIT_USAGE) from exc
    except ZoneInfoNotFoundError as exc:
        # Settings' timezone validator lets zoneinfo's KeyError through (not a ValueError).
        raise CliError(
            f"invalid setting TIMEZONE: {exc.args[0] if exc.args else exc} (environment or .env)",
            EXIT_USAGE,
        ) from exc


NOISY_LOGGERS = ("apscheduler", "aiogram.event", "aiohttp.access", "alembic")


def configure_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.strip().upper())
    if not isinstance(level, int):
        raise CliError(
            f"LOG_LEVEL={level_name!r} is not a logging level (DEBUG, INFO, WARNING, ERROR)",
            EXIT_USAGE,
        )
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # Libraries that talk at INFO about routine work: APScheduler on every sweep ("Running
    # job ..." every REMINDER_SWEEP_SECONDS), aiogram on every update, aiohttp on every
    # request, Alembic's plugins and "Context impl" (we report the revision change
    # ourselves). WARNING unless LOG_LEVEL=DEBUG asks for everything.
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(
            logging.NOTSET if level <= logging.DEBUG else max(level, logging.WARNING)
        )


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported by the code that uses it
        return url


# --- migrate -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrateResult:
    before: str | None
    after: str | None
    report: Any  # services.dto.SyncReport


async def migrate_and_sync(settings: Settings, *, child: bool = False) -> MigrateResult:
    """Upgrade the schema to head, then sync the pipelines file (validated first).

    A schema already at head costs one SELECT and no Alembic import; with ``child`` an
    upgrade runs in a child process (``voronka run``: the bot never imports Alembic)."""
    from services.clock import SystemClock
    from services.sales.pipeline_config import load_config
    from services.sales.pipelines import sync_config
    from storage import migrate
    from storage.db import create_engine, create_session_factory, use_sqlite_driver
    from storage.uow import UnitOfWork

    # Every engine of this process from here on (migrations, the bot, the demo).
    use_sqlite_driver(settings.sqlite_driver)
    config = load_config(settings.pipelines_file)  # a broken file stops us before the db
    url = settings.database_url
    before = await migrate.current_revision(url)
    if {before} != migrate.head_revisions():
        await (migrate.upgrade_in_child(url) if child else migrate.upgrade(url))
    after = await migrate.current_revision(url)
    engine = create_engine(url)
    try:
        async with UnitOfWork(create_session_factory(engine), SystemClock()) as uow:
            report = await sync_config(uow, config)
    finally:
        await engine.dispose()
    return MigrateResult(before, after, report)


def _describe(result: MigrateResult, pipelines_file: Path) -> list[str]:
    lines = []
    if result.before == result.after:
        lines.append(f"schema: {result.after} (up to date)")
    else:
        lines.append(f"schema: {result.before or 'empty'} -> {result.after}")
    report = result.report
    if not report.changed:
        lines.append(f"pipelines: up to date with {pipelines_file}")
        return lines
    lines.append(f"pipelines: synced from {pipelines_file}")
    for label, items in (
        ("pipelines added", report.pipelines_added),
        ("stages added", report.stages_added),
        ("stages renamed", report.stages_renamed),
        ("stages changed", report.stages_changed),
        ("pipelines changed", report.pipelines_changed),
        ("stages archived", report.stages_archived),
    ):
        if items:
            lines.append(f"  {label} ({len(items)}): {', '.join(items)}")
    if report.reasons_changed:
        lines.append(f"  loss reasons changed: {report.reasons_changed}")
    if report.questions_changed:
        lines.append(f"  qualification questions changed: {report.questions_changed}")
    return lines


def _run_migrate(settings: Settings, *, child: bool = False) -> MigrateResult:
    from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

    from services.errors import RuleViolation, StageHasDeals
    from services.sales.pipeline_config import ConfigError

    try:
        return asyncio.run(migrate_and_sync(settings, child=child))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        raise CliError(f"{exc.path} is invalid; the database was not touched") from exc
    except StageHasDeals as exc:
        p = exc.params
        raise CliError(
            f'stage "{p.get("stage")}" ({p.get("name")}) is missing from '
            f"{settings.pipelines_file} but still holds {p.get('count')} deal(s) or lead(s); "
            "move them out first or keep the stage (rename it with `name` if needed). "
            "Nothing was synced."
        ) from exc
    except RuleViolation as exc:
        raise CliError(f"pipelines sync refused: {exc}") from exc
    except subprocess.CalledProcessError as exc:  # the child printed its traceback
        raise CliError("the schema upgrade failed (see above); the bot was not started") from exc
    except ArgumentError as exc:  # unparsable URL or unknown driver
        raise CliError(
            f"DATABASE_URL={settings.database_url!r} is not usable: {exc}", EXIT_USAGE
        ) from exc
    except (OperationalError, DBAPIError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise CliError(
            f"database {_safe_url(settings.database_url)} is not usable: {detail}"
        ) from exc


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    result = _run_migrate(settings)
    print(f"database: {_safe_url(settings.database_url)}")
    for line in _describe(result, settings.pipelines_file):
        print(line)
    return 0


# --- check-config ------------------------------------------------------------------------


def _stage_line(stage: Any, pipeline_strict: bool) -> list[str]:
    marks = [str(stage.kind)]
    if stage.key:
        marks.append("★ key")
    if stage.strict is not None and stage.strict != pipeline_strict:
        marks.append("strict" if stage.strict else "manual")
    if stage.probability:
        marks.append(f"{stage.probability}%")
    lines = [f"    {stage.code:<24} {stage.name:<28} {' · '.join(marks)}"]
    if stage.requires:
        lines.append(f"{'':<33}requires: {', '.join(stage.requires)}")
    if stage.task is not None:
        task = stage.task
        target = f"role {task.to_role}" if task.to_role else "the deal's manager"
        lines.append(
            f"{'':<33}task on entry: {task.title!r} ({task.kind}) -> {target}, "
            f"due in {task.due_in_hours:g}h"
        )
    for link in stage.links:
        when = "" if link.when == "always" else f" ({link.when})"
        lines.append(f"{'':<33}links to: {link.to}{when}, carries {', '.join(link.carry)}")
    if stage.job is not None:
        job = stage.job
        lines.append(
            f"{'':<33}job: {len(job.checklist)} checks, photos "
            f"{job.photos_before} before / {job.photos_after} after"
        )
    if stage.final_payment_percent is not None:
        lines.append(f"{'':<33}final payment due: {stage.final_payment_percent}% of the amount")
    if stage.debt_blocks:
        lines.append(f"{'':<33}refused while money is owed")
    return lines


def describe_config(config: Any) -> list[str]:
    """Human-readable summary of a validated pipelines file."""
    lines = [
        f"company: {config.company.name}",
        f"{len(config.pipelines)} pipelines, {len(config.loss_reasons)} loss reasons, "
        f"{len(config.qualification)} qualification questions",
    ]
    for pipeline in config.pipelines:
        mode = "strict order" if pipeline.strict else "manual (any order)"
        lines.append("")
        lines.append(f"{pipeline.name} [{pipeline.code}] role={pipeline.role}, {mode}")
        for stage in pipeline.stages:
            lines.extend(_stage_line(stage, pipeline.strict))
    lines.append("")
    lines.append("loss reasons:")
    for reason in config.loss_reasons:
        extra = "  (conditional: the deal is frozen, not lost)" if reason.conditional else ""
        if reason.comment_required:
            extra += "  (asks for a comment)"
        if reason.applies_to != "any":
            extra += f"  ({reason.applies_to} only)"
        lines.append(f"    {reason.code:<24} {reason.name}{extra}")
    if config.qualification:
        lines.append("")
        lines.append("qualification questions:")
        for question in config.qualification:
            extra = "  (required)" if question.required else ""
            lines.append(f"    {question.code:<24} {question.text}{extra}")
    missing = missing_english(config)
    if missing:  # English readers see these in the configured language
        lines.append("")
        lines.append(f"no English name (English readers see the name as written): {len(missing)}")
        lines += [f"    {where}" for where in missing]
    return lines


def missing_english(config: Any) -> list[str]:
    """Where the pipelines file gives no `name_en` / `text_en` / `title_en`."""
    found = [f"pipeline {p.code}" for p in config.pipelines if not p.name_en]
    for p in config.pipelines:
        found += [f"stage {p.code}.{s.code}" for s in p.stages if not s.name_en]
        for s in p.stages:
            if s.task is not None and not s.task.title_en:
                found.append(f"task of stage {p.code}.{s.code}")
    found += [f"loss reason {r.code}" for r in config.loss_reasons if not r.name_en]
    found += [f"question {q.code}" for q in config.qualification if not q.text_en]
    return found


def cmd_check_config(args: argparse.Namespace) -> int:
    from services.sales.pipeline_config import ConfigError, load_config

    path: Path = args.file if args.file is not None else load_settings().pipelines_file
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return EXIT_ERROR
    print(f"{path}: OK")
    for line in describe_config(config):
        print(line)
    return 0


# --- run ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    # Start-up makes about a million objects that live as long as the process (aiogram's
    # ~300 pydantic models above all): no garbage collection runs over them while they are
    # made (-0.5 s of a 3.4 s start, bench/startup.py), and afterwards they are frozen out
    # of every later collection (gc.freeze, as the gc module's docs suggest).
    gc.disable()
    try:
        settings = load_settings()
        settings.require_token()  # before anything else: no token, nothing to do
        configure_logging(settings.log_level)
        result = _run_migrate(settings, child=True)
        for line in _describe(result, settings.pipelines_file):
            log.info("%s", line)
        import handlers.routers  # noqa: F401  (build_dispatcher's routers, imported now)
        from bot.app import StartupError
        from bot.polling import run_polling
    finally:
        gc.freeze()
        gc.enable()

    try:
        asyncio.run(run_polling(settings, migrated=True))
    except StartupError as exc:
        raise CliError(str(exc)) from exc
    return 0


def cmd_webhook(args: argparse.Namespace) -> int:
    from bot import webhook

    settings = load_settings()
    settings.require_token()
    webhook.webhook_url(settings)  # WEBHOOK_BASE_URL and WEBHOOK_SECRET before anything else
    if settings.webhook_secret is None:
        raise MissingSetting("WEBHOOK_SECRET")
    configure_logging(settings.log_level)
    result = _run_migrate(settings)
    for line in _describe(result, settings.pipelines_file):
        log.info("%s", line)
    from bot.app import StartupError

    try:
        asyncio.run(webhook.run_webhook(settings, migrated=True))
    except StartupError as exc:
        raise CliError(str(exc)) from exc
    return 0


# --- demo --------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import DemoError, run_demo

    if args.deals < 1:
        raise CliError("--deals must be at least 1", EXIT_USAGE)
    settings = load_settings()
    configure_logging(settings.log_level)
    result = _run_migrate(settings)
    for line in _describe(result, settings.pipelines_file):
        log.info("%s", line)
    lang = args.lang or settings.default_language
    try:
        report = asyncio.run(
            run_demo(
                settings.database_url,
                args.deals,
                args.seed,
                pipelines_file=settings.pipelines_file,
                force=args.force,
                lang=lang,
            )
        )
    except DemoError as exc:
        raise CliError(str(exc)) from exc
    print(f"database: {_safe_url(settings.database_url)}")
    print(f"demo data: {args.deals} deals (seed {args.seed}, language {lang})")
    for line in report.lines():
        print(line)
    return 0


# --- backup and restore --------------------------------------------------------------------


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB"):
        if size < 1024:
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def cmd_backup(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from storage.backup import BackupError, check, take

    settings = load_settings()
    configure_logging(settings.log_level)
    directory: Path = args.dir if args.dir is not None else settings.backup_dir
    try:
        made = take(settings.database_url, directory, datetime.now(UTC))
        revision = check(made.path)
    except BackupError as exc:
        raise CliError(f"backup failed: {exc}") from exc
    except OSError as exc:
        raise CliError(f"backup failed: {exc}") from exc
    print(f"database: {_safe_url(settings.database_url)}")
    print(f"backup: {made.path} ({_size(made.size)})")
    if revision == "pg_dump":
        print("checked: pg_restore --list reads it whole")
    else:
        print(f"checked: integrity ok, schema {revision}")
    if settings.store_files:
        print(f"files: not in this copy; they are in {settings.files_dir} (copy that folder too)")
    return 0


async def _bots_running(url: str) -> list[tuple[str, Any]]:
    """The bot processes beating on `url` now (services/backups.py); none for a database
    that does not exist or has no schema yet."""
    from sqlalchemy.exc import DBAPIError

    from services import backups
    from services.clock import SystemClock
    from storage.backup import is_sqlite, sqlite_path
    from storage.db import create_engine, create_session_factory
    from storage.uow import UnitOfWork

    if is_sqlite(url) and not sqlite_path(url).exists():
        return []
    engine = create_engine(url)
    try:
        async with UnitOfWork(create_session_factory(engine), SystemClock()) as uow:
            return await backups.running(uow)
    except DBAPIError:  # no database, or no job_runs table: nothing runs on it
        return []
    finally:
        await engine.dispose()


def cmd_restore(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from storage.backup import BackupError, check, is_sqlite, restore, sqlite_path, take

    settings = load_settings()
    configure_logging(settings.log_level)
    url = settings.database_url
    source: Path = args.file
    try:
        revision = check(source)
    except BackupError as exc:
        raise CliError(f"{exc}; the database was not touched") from exc
    running = asyncio.run(_bots_running(url))
    if running:
        names = ", ".join(name.removeprefix("alive:") for name, _ in running)
        raise CliError(
            f"the bot is running on {_safe_url(url)} ({names}); stop it first "
            "(a killed bot counts as running for 90 s after its last heartbeat). "
            "Nothing was restored"
        )
    if not args.yes:
        print(f"This replaces the database {_safe_url(url)} with {source}.")
        try:
            answer = input("Type yes to go on: ")
        except EOFError:
            answer = ""
        if answer.strip().lower() != "yes":
            raise CliError("not confirmed; nothing was restored", EXIT_USAGE)
    exists = not is_sqlite(url) or sqlite_path(url).exists()
    if exists and not args.no_safety_copy:
        try:  # the database being replaced, in case the wrong file was restored
            kept = take(url, settings.backup_dir, datetime.now(UTC))
            print(f"the current database was saved first: {kept.path}")
        except (BackupError, OSError) as exc:
            print(f"warning: no copy of the current database was made ({exc})", file=sys.stderr)
    try:
        restore(source, url)
    except (BackupError, OSError) as exc:
        raise CliError(f"restore failed: {exc}") from exc
    print(f"restored: {source} ({'schema ' + revision if revision != 'pg_dump' else 'pg_dump'})")
    result = _run_migrate(settings)
    print(f"database: {_safe_url(url)}")
    for line in _describe(result, settings.pipelines_file):
        print(line)
    return 0


# --- export-all ------------------------------------------------------------------------


def cmd_export_all(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlalchemy.exc import DBAPIError

    from storage.portable import export_all

    settings = load_settings()
    configure_logging(settings.log_level)
    target: Path = args.target
    try:
        counts = export_all(settings.database_url, target, datetime.now(UTC))
    except FileExistsError as exc:
        raise CliError(f"{exc}: give a new folder or a .zip file", EXIT_USAGE) from exc
    except (DBAPIError, OSError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise CliError(f"export failed: {detail}") from exc
    print(f"database: {_safe_url(settings.database_url)}")
    print(f"exported: {target} ({len(counts)} tables, {sum(counts.values())} rows; README.md)")
    return 0


# --- entry point -------------------------------------------------------------------------


def version() -> str:
    """The installed distribution's version (pyproject.toml [project] version)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("voronka")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voronka",
        description="Voronka: a sales CRM whose front-end is a Telegram bot. "
        "Settings come from the environment and .env (see .env.example).",
        epilog="Start with `voronka run` (needs BOT_TOKEN); `voronka COMMAND --help` tells "
        "more about a command.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"voronka {version()} (Python {sys.version.split()[0]})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the bot (long polling); migrates the database and syncs pipelines first",
        description="Migrate the database, sync the pipelines file, then poll Telegram.",
    )
    run.set_defaults(func=cmd_run)
    webhook = commands.add_parser(
        "webhook",
        help="run the bot behind a webhook (HTTP server; also the lead intake API, /healthz)",
        description="Migrate the database, sync the pipelines file, register the webhook "
        "(WEBHOOK_BASE_URL + WEBHOOK_PATH, WEBHOOK_SECRET) and serve it on "
        "WEBHOOK_HOST:WEBHOOK_PORT with POST /api/leads and GET /healthz. Several workers "
        "may run at once on PostgreSQL + Redis.",
    )
    webhook.set_defaults(func=cmd_webhook)
    migrate = commands.add_parser(
        "migrate",
        help="upgrade the database schema and sync the pipelines file into it",
        description="Upgrade DATABASE_URL to the latest schema, then sync PIPELINES_FILE. "
        "Safe to run again: a second run changes nothing.",
    )
    migrate.set_defaults(func=cmd_migrate)
    check = commands.add_parser(
        "check-config",
        help="validate a pipelines file and show its pipelines and stages",
        description="Validate a pipelines TOML file (default: PIPELINES_FILE) and print "
        "its pipelines, stages and loss reasons. Exit status 1 if it is invalid.",
    )
    check.add_argument("file", nargs="?", type=Path, metavar="FILE", help="a pipelines TOML file")
    check.set_defaults(func=cmd_check_config)
    demo = commands.add_parser(
        "demo",
        help="fill the database with realistic synthetic deals (for trying the reports)",
        description="Migrate DATABASE_URL, then add N synthetic deals with leads, stage "
        "history, tasks and installments spread over the last year (managers are created "
        "if there are none). The data is made up: a database that already has deals or "
        "leads is refused unless --force. The made-up people never get a message.",
    )
    demo.add_argument("--deals", type=int, required=True, metavar="N", help="how many deals")
    demo.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    demo.add_argument(
        "--lang",
        choices=("ru", "en"),
        help="language of the made-up names, needs and tasks (default: DEFAULT_LANGUAGE)",
    )
    demo.add_argument(
        "--force",
        action="store_true",
        help="add the made-up data even if the database already has deals or leads",
    )
    demo.set_defaults(func=cmd_demo)
    backup = commands.add_parser(
        "backup",
        help="write a checked copy of the database, named by time, into BACKUP_DIR",
        description="Copy DATABASE_URL while the bot runs (SQLite: VACUUM INTO, one "
        "consistent instant; PostgreSQL: pg_dump), check the copy (integrity check / "
        "pg_restore --list) and name it by the UTC time, e.g. voronka-20261207T033000Z.db. "
        "The bot makes one every night at BACKUP_AT by itself.",
    )
    backup.add_argument(
        "--dir", type=Path, metavar="DIR", help="where to write it (default: BACKUP_DIR)"
    )
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser(
        "restore",
        help="replace the database with a backup (the bot must be stopped)",
        description="Check FILE, refuse while a bot runs on DATABASE_URL, save the current "
        "database into BACKUP_DIR, put FILE in its place and migrate it to the current "
        "schema. PostgreSQL: the database must exist (createdb) and is emptied first.",
    )
    restore.add_argument("file", type=Path, metavar="FILE", help="a backup made by voronka")
    restore.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    restore.add_argument(
        "--no-safety-copy",
        action="store_true",
        help="do not save the current database before replacing it",
    )
    restore.set_defaults(func=cmd_restore)
    export = commands.add_parser(
        "export-all",
        help="write every table the company owns as JSON Lines (a folder or a .zip)",
        description="Write one TABLE.jsonl per table of the company's data (deals, leads, "
        "contacts, history, tasks, timeline, payments, team...), a README.md describing "
        "every field and a manifest.json with the row counts, into TARGET: a new folder, or "
        "a .zip file. Safe while the bot runs.",
    )
    export.add_argument("target", type=Path, metavar="TARGET", help="a new folder or a .zip")
    export.set_defaults(func=cmd_export_all)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `voronka`: what it can do
        parser.print_help()
        return 0
    try:
        code: int = args.func(args)
        return code
    except MissingSetting as exc:
        if exc.name == "BOT_TOKEN":
            message = "BOT_TOKEN is not set — put BOT_TOKEN=<token from @BotFather> in .env"
        else:
            message = f"{exc.name} is not set — put {exc.name}=... in .env"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
