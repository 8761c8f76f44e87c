"""scripts/try (README, "Without a Telegram account"): the prompt drives the real bot
against the emulator; typed commands and taps come back as the bot's messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from handlers.ui.i18n import t
from tests.e2e.conftest import ensure_node_modules

ROOT = Path(__file__).resolve().parents[2]


def test_try_it_answers_help_and_a_tap(tmp_path: Path) -> None:
    """Also (issue 20): a refused tap's popup is shown, and `app` gives a Mini App link."""
    ensure_node_modules()  # the emulator's npm package (skips or fails per VORONKA_TEST_E2E)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("BOT_", "DATABASE"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.try_it", "--lang", "en", "--data", str(tmp_path)],
        input="/help\n/lead\n/cancel\ntap Call\napp\n/lang\ntap Русский\nquit\n",
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr + (tmp_path / "bot.log").read_text()
    assert "You are Alla, the first admin" in out
    assert "[bot] ℹ️ Alla, your role: admin." in out and "/invite — Invite a colleague" in out
    assert "🇷🇺 Русский]" in out  # the /lang keyboard, printed with its buttons
    stale = "[popup] " + t("common.stale_button", "en")  # the wizard's button, after /cancel
    assert stale in out
    assert "/app/?view=board#tgWebAppData=" in out  # the Mini App, logged in as Alla
    assert "Главное меню" in out  # after the tap, the bot speaks Russian
