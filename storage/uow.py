"""Unit of work (cosmicpython pattern, async).

``async with uow:`` opens a session; repositories never commit; a service
calls ``await uow.commit()`` once; leaving the block without a commit rolls
back everything the block did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy import bindparam, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from storage.cache import AREAS, ProcessCache
from storage.db import NO_BEGIN, READ_ONLY
from storage.errors import Conflict, Duplicate
from storage.models import CacheEpoch, ProcessedUpdate
from storage.repositories import Repositories

# Built once: a statement made per call costs more to build and key than to run.
_PEEK = select(
    select(literal(1)).where(ProcessedUpdate.update_id == bindparam("update_id")).scalar_subquery(),
    *(
        select(CacheEpoch.version).where(CacheEpoch.name == area).scalar_subquery()
        for area in AREAS
    ),
)

_RECORD_UPDATE = insert(ProcessedUpdate).values(
    update_id=bindparam("update_id"), at=bindparam("at")
)


class DuplicateUpdate(Exception):
    """This Telegram update was already applied by another delivery; nothing was saved."""

    def __init__(self, update_id: int) -> None:
        super().__init__(update_id)
        self.update_id = update_id


class ClockLike(Protocol):
    def now(self) -> datetime: ...


class _UTCClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class UnitOfWork:
    """Carries the clock too, so every service reads time from one injected source."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: ClockLike | None = None,
        *,
        read_only: bool = False,
        cache: ProcessCache | None = None,
        no_begin: bool = False,
        policy: object = None,
    ) -> None:
        self._session_factory = session_factory
        self.clock: ClockLike = clock or _UTCClock()
        # The company policy (services.policy.CompanyPolicy; services read it through
        # `services.policy.of(uow)`), carried like the clock. Opaque here: storage knows no
        # services.
        self.policy = policy
        self.read_only = read_only or no_begin
        self._no_begin = no_begin
        self._cache = cache if cache is not None else ProcessCache()
        self._cache_checked = False
        self._session: AsyncSession | None = None
        self._repos: Repositories | None = None
        self._update_id: int | None = None

    def bind_update(self, update_id: int) -> None:
        """Record this Telegram update id in the same commit as the update's effect, so a
        redelivered update can never apply twice (the id's primary key refuses it)."""
        self._update_id = update_id

    @property
    def update_pending(self) -> bool:
        """A bound update id that no commit has recorded yet."""
        return self._update_id is not None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    @property
    def repo(self) -> Repositories:
        if self._repos is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._repos

    async def __aenter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("UnitOfWork is not re-entrant")
        self._session = self._session_factory()
        self._repos = Repositories(self._session)
        if self.read_only:  # SQLite: a deferred BEGIN (or none), no write lock (storage/db.py)
            options = {READ_ONLY: True, NO_BEGIN: self._no_begin}
            await self._session.connection(execution_options=options)
        return self

    # --- the process cache (storage/cache.py) ----------------------------------------------

    async def cached(self, area: str) -> dict[Any, Any]:
        """The process cache's bucket for `area`, checked against the database's epochs once
        per unit of work (one statement), so a value cached here is never staler than this
        unit of work's first look."""
        if not self._cache_checked:
            rows = await self.session.execute(select(CacheEpoch.name, CacheEpoch.version))
            self._cache.validate({name: version for name, version in rows})
            self._cache_checked = True
        return self._cache.bucket(area)

    async def peek_update(self, update_id: int | None) -> bool:
        """Whether this Telegram update was already applied, and the cache epochs checked, in
        one statement (the first of every update)."""
        row = (await self.session.execute(_PEEK, {"update_id": update_id})).one()
        self._cache.validate(dict(zip(AREAS, row[1:], strict=True)))
        self._cache_checked = True
        return row[0] is not None

    def trust_cache(self) -> None:
        """This unit of work belongs to an update whose epochs were just checked."""
        self._cache_checked = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session, self._repos = self._session, None, None
        self._update_id = None
        self._cache_checked = False
        if session is None:
            return
        # close() rolls back whatever was not committed and detaches objects without
        # expiring them (rollback() would expire them, making them unreadable).
        await session.close()

    async def commit(self) -> None:
        """Commit; a versioned row changed meanwhile raises `Conflict`, a unique key taken
        `Duplicate` (storage.errors), a redelivered update `DuplicateUpdate`."""
        if self.read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            if self._update_id is not None:
                update_id, self._update_id = self._update_id, None  # once per update
                await self.session.flush()  # the effect's own rows first, so a conflict below
                try:
                    await self.session.execute(
                        _RECORD_UPDATE, {"update_id": update_id, "at": self.clock.now()}
                    )
                except IntegrityError as exc:  # another delivery of this update committed first
                    await self.session.rollback()
                    raise DuplicateUpdate(update_id) from exc
            await self.session.commit()
        except StaleDataError as exc:
            raise Conflict(str(exc)) from exc
        except IntegrityError as exc:
            raise Duplicate(str(exc.orig)) from exc

    async def flush(self) -> None:
        """Flush; errors as for `commit`."""
        try:
            await self.session.flush()
        except StaleDataError as exc:
            raise Conflict(str(exc)) from exc
        except IntegrityError as exc:
            raise Duplicate(str(exc.orig)) from exc

    async def rollback(self) -> None:
        await self.session.rollback()


class UnitOfWorkFactory:
    """Callable that makes a fresh UnitOfWork; passed to handlers and jobs."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        clock: ClockLike | None = None,
        *,
        policy: object = None,
    ) -> None:
        self.session_factory = session_factory
        self.clock: ClockLike = clock or _UTCClock()
        self.policy = policy  # handed to every unit of work (see UnitOfWork.policy)
        self.cache = ProcessCache()  # one per factory: a test's factory starts empty

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self.clock, cache=self.cache, policy=self.policy)

    def read_only(self) -> UnitOfWork:
        """For lookups that never write (no write lock on SQLite)."""
        return UnitOfWork(
            self.session_factory, self.clock, read_only=True, cache=self.cache, policy=self.policy
        )

    def peek(self) -> UnitOfWork:
        """For one or two independent reads (the start of every update): on SQLite no
        transaction at all, each statement on its own."""
        return UnitOfWork(
            self.session_factory, self.clock, no_begin=True, cache=self.cache, policy=self.policy
        )
