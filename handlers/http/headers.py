"""Headers every HTTP answer carries, and what the server logs about requests it cannot
even parse.

- ``Server: Voronka`` (aiohttp would name Python's and its own versions).
- The Mini App (``/app``): a Content-Security-Policy allowing only its own scripts, styles
  and API, Telegram's ``telegram-web-app.js`` and the page's one inline loader (by its
  hash); ``X-Content-Type-Options: nosniff``; ``Referrer-Policy: no-referrer``. Telegram
  shows the page in a frame on its web clients: ``frame-ancestors`` names them.
- A request aiohttp refuses before any handler (a 20 KB Authorization header, a broken
  request line) is a client's fault: one WARNING line naming the kind of error, not an
  ERROR with a traceback quoting the header's contents.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from pathlib import Path

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

SERVER = "Voronka"
TELEGRAM_SCRIPT = "https://telegram.org"
PAGE = Path(__file__).resolve().parent.parent / "webapp" / "static" / "index.html"


def _inline_hashes(html: str) -> list[str]:
    """CSP hashes of the page's inline scripts (so nothing else inline may run)."""
    found = re.findall(r"<script>(.*?)</script>", html, re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
        for s in found
    ]


def content_security_policy(html: str) -> str:
    scripts = " ".join(["'self'", *_inline_hashes(html), TELEGRAM_SCRIPT])
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org",
        )
    )


CSP = content_security_policy(PAGE.read_text(encoding="utf-8")) if PAGE.exists() else ""
APP_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER
    if request.path == "/app" or request.path.startswith("/app/"):
        for name, value in APP_HEADERS.items():
            response.headers.setdefault(name, value)


class RefusedRequestFilter(logging.Filter):
    """aiohttp.server's "Error handling request" for an unparsable request: one WARNING
    line with the error's kind and status, without the traceback (which quotes the request:
    an oversized Authorization header would land in the log)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = (
                "refused an unparsable request: %s (%s)",
                (
                    type(exc).__name__,
                    exc.code,
                ),
            )
            record.exc_info, record.exc_text = None, None
        return True


_FILTER = RefusedRequestFilter()


def harden(app: web.Application) -> None:
    """Put the headers on every answer of `app` and quiet the server's refusals (once)."""
    if _on_prepare not in app.on_response_prepare:
        app.on_response_prepare.append(_on_prepare)
    server_log = logging.getLogger("aiohttp.server")
    if _FILTER not in server_log.filters:
        server_log.addFilter(_FILTER)
