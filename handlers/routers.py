"""Router assembly: each area package has a `setup()` that builds its Router.

`routers()` assembles fresh routers in dispatch order for one Dispatcher (production builds
one per process, the tests one per test), so no router is shared between Dispatchers.
"""

from __future__ import annotations

from aiogram import Router

from handlers import errors
from handlers.business import router as business
from handlers.deals import router as deals
from handlers.followups import router as followups
from handlers.funnel import router as funnel
from handlers.imports import router as imports
from handlers.installments import router as installments
from handlers.leads import router as leads
from handlers.measurement import router as measurement
from handlers.start import router as start
from handlers.tasks import router as tasks
from handlers.team import router as team


def routers() -> list[Router]:
    """The error router first, then invites and the menu, the areas (staff only), and last
    the catch-all for people who are not staff."""
    access, menu, strangers = start.setup()
    areas = (
        deals,
        leads,
        team,
        tasks,
        measurement,
        followups,
        installments,
        funnel,
        imports,
        business,
    )
    return [errors.setup(), access, menu, *(area.setup() for area in areas), strangers]
