"""The assembler: what receives input, put together — the only module that imports the
areas' router modules.

`routers()`: each area package has a `setup()` that builds its Router; this assembles fresh
routers in dispatch order for one Dispatcher (production builds one per process, the tests
one per test), so no router is shared between Dispatchers.

`mount_http()`: the HTTP routes besides Telegram's webhook (the site form, handlers/http;
the Mini App, handlers/webapp) on an aiohttp app that bot/webhook.py or bot/webapp.py serves.
"""

from __future__ import annotations

from aiogram import Router
from aiohttp import web

from handlers import errors
from handlers.business import router as business
from handlers.clients import answers as client_answers
from handlers.clients import router as clients
from handlers.deals import router as deals
from handlers.edit import router as edit
from handlers.followups import router as followups
from handlers.funnel import router as funnel
from handlers.http import headers, intake
from handlers.imports import router as imports
from handlers.installation import router as installation
from handlers.installments import router as installments
from handlers.leads import router as leads
from handlers.measurement import router as measurement
from handlers.start import router as start
from handlers.tasks import router as tasks
from handlers.team import router as team
from handlers.webapp import api as webapp_api


def routers() -> list[Router]:
    """The error router first, then client and staff invites and the menu, the areas (staff
    only), the client's side (linked clients; strangers' requests), and last the catch-all
    for people who are not staff."""
    access, menu, strangers = start.setup()
    client_links, client_side, client_requests = clients.setup()
    areas = (
        deals,
        edit,
        leads,
        team,
        tasks,
        measurement,
        installation,
        followups,
        installments,
        funnel,
        imports,
        business,
    )
    return [
        errors.setup(),
        client_links,
        access,
        menu,
        *(area.setup() for area in areas),
        client_answers.setup(),  # clients only: their answers, /stop (before the catch-alls)
        client_side,
        client_requests,
        strangers,
    ]


def mount_http(
    app: web.Application,
    *,
    intake_state: intake.IntakeState | None = None,
    webapp: webapp_api.WebAppState | None = None,
) -> None:
    """The site form (``POST /api/leads``) and the Mini App (``/app/``), each when given;
    the security headers on every answer (handlers/http/headers.py)."""
    headers.harden(app)
    if intake_state is not None:
        intake.mount(app, intake_state)
    if webapp is not None:
        webapp_api.mount(app, webapp)
