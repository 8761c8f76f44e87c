"""/search finds every match, a page at a time, and says the true count (issue 20)."""

from __future__ import annotations

from datetime import timedelta

from handlers.ui.callbacks import DealCb, SearchCb
from services.sales.deals import search_text
from storage.models import Company, Contact
from tests.factories import bare_deal
from tests.tg import tg_user


async def _deals(uow_factory, clock, manager_id: int) -> dict[str, list[int]]:
    """23 deals of `manager_id` that match "Морозов" (20 by the client's name, 3 by the
    company), 5 that do not, and one whose client has a phone."""
    made: dict[str, list[int]] = {"match": [], "other": [], "phone": []}
    async with uow_factory() as uow:
        sales = await uow.repo.pipelines.by_code("sales")
        stage = (await uow.repo.pipelines.stages(sales.id))[0]
        now = clock.now()
        rows = []
        for i in range(28):
            company = None
            if i < 20:
                contact = Contact(name=f"Морозов Пётр {i}", created_at=now)
            elif i < 23:
                contact = Contact(name=f"Анна {i}", created_at=now)
                company = Company(name="ООО «Морозов и партнёры»", created_at=now)
            else:
                phone = "+79161234567" if i == 23 else None
                contact = Contact(name=f"Сидоров {i}", phone=phone, created_at=now)
            uow.repo.add(contact)
            if company is not None:
                uow.repo.add(company)
            await uow.flush()
            deal = bare_deal(
                stage,
                now - timedelta(minutes=i),
                f"Окна {i}",
                manager_id=manager_id,
                contact_id=contact.id,
                company_id=company.id if company else None,
                search_text=search_text(f"Окна {i}", contact, company),
            )
            uow.repo.add(deal)
            rows.append((i, deal))
        await uow.flush()
        for i, deal in rows:
            made["match" if i < 23 else "other"].append(deal.id)
            if i == 23:
                made["phone"].append(deal.id)
        await uow.commit()
    return made


def _opened(sent) -> set[int]:
    prefix = DealCb.__prefix__ + ":"
    return {DealCb.unpack(data).deal_id for _, data in sent.buttons() if data.startswith(prefix)}


async def test_search_pages_through_all_23_matches(harness, team, uow_factory, clock):
    ann, bob, lee = team["ann"], team["bob"], team["lee"]
    made = await _deals(uow_factory, clock, ann.id)
    theirs = await _deals(uow_factory, clock, bob.id)  # ann must not see bob's
    user = tg_user(ann.telegram_id)

    first = await harness.send(user, "/search морозов")
    assert "Найдено: 23 · стр. 1 из 3" in first.text
    seen = _opened(first)
    assert len(seen) == 10
    page = first
    for expected in (10, 3):
        page = await harness.tap(user, page.button("Ещё ▶"), page)
        shown = _opened(page)
        assert len(shown) == expected and not shown & seen
        seen |= shown
    assert seen == set(made["match"])
    assert "Ещё ▶" not in str(page.buttons())  # the last page has no "more"
    back = await harness.tap(user, SearchCb(page=1), page)
    assert "стр. 2 из 3" in back.text and len(_opened(back)) == 10

    # a leader sees everyone's: the count is true for them too
    leader = await harness.send(tg_user(lee.telegram_id), "/search Морозов")
    assert "Найдено: 46 · стр. 1 из 5" in leader.text

    # phone digits typed any way, and the deal's number
    for query in ("8 (916) 123-45-67", "+7 916 1234567", "9161234567"):
        found = await harness.send(user, f"/search {query}")
        assert _opened(found) == set(made["phone"]), query
    number = made["other"][-1]
    found = await harness.send(user, f"/search #{number}")
    assert number in _opened(found)
    assert theirs["other"][-1] not in _opened(
        await harness.send(user, f"/search #{theirs['other'][-1]}")
    )
