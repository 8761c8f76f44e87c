"""First response and daily norms as lines (issue 26): one drawing of the numbers of
services/team/norms.py for /funnel's managers view, the digests (handlers/funnel/views.py),
the morning summary (handlers/notify) and the Mini App dashboard (handlers/webapp/api.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from handlers.ui import fmt
from handlers.ui.i18n import t


class ResponseRow(Protocol):
    """services.team.norms.ResponseFigures, or the digest's ResponseLine: the same fields."""

    @property
    def name(self) -> str: ...
    @property
    def leads(self) -> int: ...
    @property
    def median_minutes(self) -> int | None: ...
    @property
    def within(self) -> int: ...
    @property
    def counted(self) -> int: ...


class NormRow(Protocol):
    """services.team.norms.NormResult, or a stored NormLine."""

    @property
    def name(self) -> str: ...
    @property
    def what(self) -> str: ...
    @property
    def done(self) -> int: ...
    @property
    def target(self) -> int: ...


def norm_items(rows: Sequence[NormRow], lang: str) -> str:
    """One person's norms: "✅ calls 20/20 · ❌ notes 2/5"."""
    return " · ".join(
        ("✅ " if r.done >= r.target else "❌ ")
        + t(f"team.norm.{r.what}", lang, done=r.done, target=r.target)
        for r in rows
    )


def team_lines(
    response: Sequence[ResponseRow],
    norms: Sequence[NormRow],
    limit_minutes: int,
    day: date | None,
    lang: str,
) -> list[str]:
    """First response per manager and who met the norms of `day`: the same lines in /funnel's
    managers view, the digests and the Mini App (plain text: a Telegram message escapes
    each line, the Mini App shows it as text)."""
    lines: list[str] = []
    if response:
        lines += ["", t("team.response.head", lang, limit=limit_minutes)]
    for r in response:
        share = "—" if not r.counted else fmt.percent(r.within / r.counted, lang)
        median = (
            t("funnel.managers.no_response", lang)
            if r.median_minutes is None
            else t("funnel.dur.m", lang, m=r.median_minutes)
        )
        lines.append(
            t(
                "team.response.row",
                lang,
                name=r.name,
                median=median,
                within=r.within,
                counted=r.counted,
                share=share,
            )
        )
    if norms and day is not None:
        lines += ["", t("team.norms.head", lang, date=fmt.day(day, lang))]
        people: dict[str, list[NormRow]] = {}
        for n in norms:
            people.setdefault(n.name, []).append(n)
        for name, rows in people.items():
            met = all(r.done >= r.target for r in rows)
            key = "team.norms.met" if met else "team.norms.missed"
            lines.append(t(key, lang, name=name, items=norm_items(rows, lang)))
    return lines
