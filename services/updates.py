"""Telegram updates already applied (a redelivered update must not act twice)."""

from __future__ import annotations

from datetime import timedelta

from storage.uow import UnitOfWork


async def already_processed(uow: UnitOfWork, update_id: int) -> bool:
    """Did an earlier delivery of this update already commit its effect?"""
    return await uow.repo.system.seen(update_id)


async def forget_older_than(uow: UnitOfWork, age: timedelta = timedelta(days=7)) -> int:
    """Drop old ids (Telegram redelivers for a day at most); returns how many went."""
    count = await uow.repo.system.delete_before(uow.clock.now() - age)
    await uow.commit()
    return count
