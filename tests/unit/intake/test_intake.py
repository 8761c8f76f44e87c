"""services/intake/api.py without HTTP: token parsing and lookup, field normalization, the
round-robin pointer and the in-process rate limiter (the HTTP side: tests/integration)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.cli import main
from services.clock import FakeClock
from services.intake import api as intake
from storage.models import Employee
from storage.models.intake import AssignmentCursor


def test_parse_tokens() -> None:
    tokens = intake.parse_tokens(" site:0123456789abcdef0123, email-info:fedcba9876543210fedc ")
    assert tokens == {"site": "0123456789abcdef0123", "email-info": "fedcba9876543210fedc"}
    assert intake.parse_tokens("") == {} and intake.parse_tokens(None) == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0123456789abcdef0123", "SOURCE:TOKEN"),
        ("site:short", "at least 16"),
        ("banner:0123456789abcdef0123", "must start with a lead source"),
        ("Site:0123456789abcdef0123", "lowercase"),
        ("site:0123456789abcdef0123,site:aaaaaaaaaaaaaaaaaaaaaaaa", "twice"),
        ("site:0123456789abcdef0123,email:0123456789abcdef0123", "another source"),
    ],
)
def test_bad_tokens_are_explained_without_the_token(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        intake.parse_tokens(text)
    assert "0123456789abcdef0123" not in str(caught.value)


def test_authenticate_compares_every_token() -> None:
    registry = intake.TokenRegistry.from_setting(
        "site:0123456789abcdef0123,site-promo:aaaaaaaaaaaaaaaaaaaa,email:bbbbbbbbbbbbbbbbbbbb"
    )
    assert registry.authenticate("aaaaaaaaaaaaaaaaaaaa") == intake.IntakeSource(
        "site-promo", "site"
    )
    assert registry.authenticate("bbbbbbbbbbbbbbbbbbbb") == intake.IntakeSource("email", "email")
    for wrong in (None, "", "aaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaa", "токен"):
        assert registry.authenticate(wrong) is None
    assert not intake.TokenRegistry.from_setting(None)


def test_normalize_fields() -> None:
    fields = intake.normalize_fields(
        {
            "name": "  Ann  ",
            "phone": 79161234567,  # a JSON number
            "message": "from the alias",
            "need": "the canonical name wins",
            "email": "",  # blank = absent
            "utm_source": "ignored",
            "company": None,
        }
    )
    assert fields == {"name": "Ann", "phone": "79161234567", "need": "the canonical name wins"}
    with pytest.raises(intake.InvalidSubmission) as caught:
        intake.normalize_fields({"name": {"first": "Ann"}, "phone": True})
    assert caught.value.errors == {"name": "invalid", "phone": "invalid"}


def test_request_hash_ignores_order_and_encoding() -> None:
    one = intake.request_hash(intake.normalize_fields({"name": "Ann", "phone": "+79161234567"}))
    two = intake.request_hash(intake.normalize_fields({"phone": "+79161234567", "name": " Ann"}))
    other = intake.request_hash(intake.normalize_fields({"name": "Ann", "phone": "+79161234568"}))
    assert one == two != other


async def test_memory_rate_limiter_fixed_window() -> None:
    clock = FakeClock()
    clock.set(clock.now().replace(second=50, microsecond=500_000))
    limiter = intake.MemoryRateLimiter(2, clock)
    decisions = [await limiter.hit("site") for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[-1].retry_after == 10  # 9.5 s left, rounded up
    assert (await limiter.hit("email")).allowed  # per source
    clock.advance(timedelta(seconds=10))
    assert (await limiter.hit("site")).allowed
    unlimited = intake.MemoryRateLimiter(0, clock)
    assert all([(await unlimited.hit("site")).allowed for _ in range(100)])


async def test_round_robin_pointer(uow_factory, make_actor) -> None:
    ann = await make_actor(roles=("manager",), telegram_id=1)
    await make_actor(roles=("leader",), telegram_id=2)  # not a manager
    bob = await make_actor(roles=("manager", "leader"), telegram_id=3)
    away = await make_actor(roles=("manager",), telegram_id=4)
    async with uow_factory() as uow:
        (await uow.session.get(Employee, away.id)).active = False
        await uow.commit()
    picks = []
    for _ in range(5):
        async with uow_factory() as uow:
            chosen = await intake.next_manager(uow)
            assert chosen is not None
            picks.append(chosen.id)
            await uow.commit()
    assert picks == [ann.id, bob.id, ann.id, bob.id, ann.id]
    assert away.id not in picks

    async with uow_factory() as uow:  # a rolled-back intake gives its turn back
        chosen = await intake.next_manager(uow)
        assert chosen is not None and chosen.id == bob.id
    async with uow_factory() as uow:
        assert (await uow.session.get(AssignmentCursor, intake.CURSOR_NAME)).last_employee_id == (
            ann.id
        )
        chosen = await intake.next_manager(uow, telegram_ids=[1])
        assert chosen is not None and chosen.id == ann.id


def test_cli_webhook_needs_its_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("BOT_TOKEN", "1:x")
    for name in ("WEBHOOK_BASE_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert main(["webhook"]) == 2
    assert "WEBHOOK_BASE_URL is not set" in capsys.readouterr().err
    monkeypatch.setenv("WEBHOOK_BASE_URL", "https://crm.example.com")
    assert main(["webhook"]) == 2
    assert "WEBHOOK_SECRET is not set" in capsys.readouterr().err
    monkeypatch.setenv("WEBHOOK_SECRET", "has spaces")
    assert main(["webhook"]) == 2
    assert "invalid setting WEBHOOK_SECRET" in capsys.readouterr().err
