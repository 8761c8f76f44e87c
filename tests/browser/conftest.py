"""The Mini App in a real headless Chromium: Debian's ``chromium`` package driven by
Playwright for Python through ``executable_path`` (no browser download).

``VORONKA_TEST_BROWSER``: ``auto`` (default: skipped when Chromium or Playwright is
missing), ``required`` (scripts/test: a missing browser FAILS the run), ``off``.
``VORONKA_TEST_CHROMIUM``: the browser binary (default /usr/bin/chromium).

``miniapp``: ``await miniapp(actor, view="board", init_data=None, viewport=PHONE)`` opens the
page as that employee, with Telegram's ``window.Telegram.WebApp`` stubbed (initData signed
with the test bot's token, a theme) and every request that is not to the test server
aborted and recorded in ``miniapp.external`` (the page must need no CDN). The app server
shares the `harness`'s bot and FSM storage (tests/webapp_kit.py), so a card in the chat is
redrawn through the recording session.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.tg import harness  # noqa: F401
from tests.webapp_kit import serve, sign_init_data

MODE_ENV = "VORONKA_TEST_BROWSER"
CHROMIUM = os.environ.get("VORONKA_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 640}
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
THEME = {
    "bg_color": "#ffffff",
    "text_color": "#000000",
    "hint_color": "#707579",
    "link_color": "#3390ec",
    "button_color": "#3390ec",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#f4f4f5",
}


def _mode() -> str:
    value = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "required", "off"):
        pytest.fail(f"{MODE_ENV}={value!r}: expected auto, required or off", pytrace=False)
    return value


def _unavailable(reason: str) -> None:
    if _mode() == "required":
        pytest.fail(f"{MODE_ENV}=required but {reason}", pytrace=False)
    pytest.skip(f"{reason} ({MODE_ENV}=auto)")


def _check_browser() -> None:
    if _mode() == "off":
        pytest.skip(f"{MODE_ENV}=off")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _check_browser()
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


def stub_telegram(init_data: str, user_id: int, lang: str) -> str:
    """The page's window.Telegram.WebApp, as Telegram's script would set it up."""
    unsafe = {"user": {"id": user_id, "first_name": "Test", "language_code": lang}}
    return f"""
    window.Telegram = {{ WebApp: {{
      initData: {json.dumps(init_data)},
      initDataUnsafe: {json.dumps(unsafe)},
      themeParams: {json.dumps(THEME)},
      colorScheme: "light",
      ready() {{}}, expand() {{}}, onEvent() {{}},
      BackButton: {{ show() {{}}, hide() {{}}, onClick() {{}} }},
      HapticFeedback: {{ notificationOccurred() {{}} }},
    }} }};
    """


class MiniApp:
    def __init__(self, browser: Any, base: str, clock: Any) -> None:
        self.browser = browser
        self.base = base
        self.clock = clock
        self.external: list[str] = []
        self.responses: list[tuple[int, str]] = []  # (status, url) of every API answer

    async def __call__(
        self,
        actor: Any,
        view: str = "board",
        *,
        init_data: str | None = None,
        lang: str = "ru",
        viewport: dict[str, int] = PHONE,
        touch: bool = True,
    ) -> Any:
        context = await self.browser.new_context(
            viewport=viewport, device_scale_factor=1, has_touch=touch, is_mobile=touch
        )
        if init_data is None:
            init_data = sign_init_data(actor.telegram_id, self.clock.now(), lang=lang)
        await context.add_init_script(stub_telegram(init_data, actor.telegram_id, lang))

        async def only_ours(route: Any) -> None:
            if route.request.url.startswith(self.base):
                await route.continue_()
            else:
                self.external.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_ours)
        page = await context.new_page()
        page.on(
            "response",
            lambda r: self.responses.append((r.status, r.url)) if "/api/" in r.url else None,
        )
        await page.goto(f"{self.base}/app/?view={view}")
        return page

    async def screenshot(self, page: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path))
        return path


@pytest.fixture
async def miniapp(browser, harness, db_url, uow_factory, clock) -> AsyncIterator[MiniApp]:  # noqa: F811
    server = await serve(harness, db_url, uow_factory)
    app = MiniApp(browser, str(server.make_url("")).rstrip("/"), clock)
    try:
        yield app
    finally:
        await server.close()
    assert not app.external, f"the page asked the network for {app.external}"


@pytest.fixture
def backend() -> str:
    """The browser tests run on SQLite (the API tests cover PostgreSQL)."""
    return "sqlite"
