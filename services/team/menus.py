"""Which commands menus Telegram already has: a digest per scope ("default", "default:en",
"chat:<telegram id>"), so a start sends only the menus that changed (handlers/ui/commands.py
computes the menus and their digests; nothing here knows what a menu holds)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from storage.uow import UnitOfWork


async def stored(uow: UnitOfWork) -> dict[str, str]:
    """scope -> the digest of the menu last set there."""
    return await uow.repo.system.menu_digests()


async def record(uow: UnitOfWork, digests: Mapping[str, str], forget: Collection[str] = ()) -> None:
    """These menus were set (scope -> digest), those scopes were cleared or are unknown
    now (the next start sets them again); one commit."""
    if forget:
        await uow.repo.system.forget_menus(forget)
    await uow.repo.system.save_menu_digests(digests, uow.clock.now())
    await uow.commit()
