"""Server defaults and the safety floor (audited, part of the cached policy) and members' own
defaults (per guild and member), in real SQLite."""

from __future__ import annotations

import aiosqlite

from bot.core.config import Settings
from bot.core.domain import AspectRatio, OutputFormat, SafetyLevel, Tier
from bot.core.storage.preferences import MemberDefaultsRepository
from bot.core.storage.protocols import OptionDefaults
from bot.core.storage.quotas import QuotaRepository
from tests.factories import GUILD_ID, USER_ID
from tests.services import quota_service

ADMIN = 42
OTHER_GUILD = GUILD_ID + 100
OTHER_USER = USER_ID + 1


async def test_a_members_defaults_are_kept_per_guild_and_member(
    connection: aiosqlite.Connection,
) -> None:
    store = MemberDefaultsRepository(connection)
    mine = OptionDefaults(
        tier=Tier.ULTRA,
        aspect_ratio=AspectRatio.PORTRAIT,
        safety=SafetyLevel.BLOCK_LOW_AND_ABOVE,
        output_format=OutputFormat.PNG,
    )

    await store.save_member_defaults(GUILD_ID, USER_ID, mine, now=1.0)

    assert await store.member_defaults(GUILD_ID, USER_ID) == mine
    assert await store.member_defaults(OTHER_GUILD, USER_ID) == OptionDefaults()
    assert await store.member_defaults(GUILD_ID, OTHER_USER) == OptionDefaults()


async def test_saving_defaults_again_replaces_them(connection: aiosqlite.Connection) -> None:
    store = MemberDefaultsRepository(connection)
    await store.save_member_defaults(GUILD_ID, USER_ID, OptionDefaults(tier=Tier.ULTRA), now=1.0)

    await store.save_member_defaults(
        GUILD_ID, USER_ID, OptionDefaults(output_format=OutputFormat.PNG), now=2.0
    )

    assert await store.member_defaults(GUILD_ID, USER_ID) == OptionDefaults(
        output_format=OutputFormat.PNG
    )


async def test_clearing_every_default_keeps_no_row(connection: aiosqlite.Connection) -> None:
    store = MemberDefaultsRepository(connection)
    await store.save_member_defaults(GUILD_ID, USER_ID, OptionDefaults(tier=Tier.ULTRA), now=1.0)

    await store.save_member_defaults(GUILD_ID, USER_ID, OptionDefaults(), now=2.0)

    [row] = await connection.execute_fetchall("SELECT COUNT(*) FROM member_defaults")
    assert row[0] == 0


async def test_the_safety_floor_is_saved_audited_and_seen_by_the_cached_policy(
    connection: aiosqlite.Connection,
) -> None:
    quotas = quota_service(connection, Settings())
    assert (await quotas.policy(GUILD_ID)).safety_floor is None  # now cached

    await quotas.set_safety_floor(GUILD_ID, ADMIN, SafetyLevel.BLOCK_LOW_AND_ABOVE)

    assert (await quotas.policy(GUILD_ID)).safety_floor is SafetyLevel.BLOCK_LOW_AND_ABOVE
    [entry] = await QuotaRepository(connection).audit_trail(GUILD_ID, limit=5)
    assert (entry.actor_id, entry.action, entry.details) == (
        ADMIN,
        "safety-floor",
        {"level": "block_low_and_above"},
    )


async def test_lifting_the_floor_is_audited_too(connection: aiosqlite.Connection) -> None:
    quotas = quota_service(connection, Settings())
    await quotas.set_safety_floor(GUILD_ID, ADMIN, SafetyLevel.BLOCK_LOW_AND_ABOVE)

    await quotas.set_safety_floor(GUILD_ID, ADMIN, None)

    assert (await quotas.policy(GUILD_ID)).safety_floor is None
    latest, _ = await QuotaRepository(connection).audit_trail(GUILD_ID, limit=5)
    assert (latest.action, latest.details) == ("safety-floor", {"level": None})


async def test_server_defaults_are_saved_audited_and_a_left_out_one_is_cleared(
    connection: aiosqlite.Connection,
) -> None:
    quotas = quota_service(connection, Settings())
    await quotas.set_server_defaults(
        GUILD_ID, ADMIN, tier=Tier.STANDARD, aspect_ratio=AspectRatio.LANDSCAPE_WIDE
    )

    await quotas.set_server_defaults(GUILD_ID, ADMIN, tier=Tier.ULTRA, aspect_ratio=None)

    assert (await quotas.policy(GUILD_ID)).defaults == OptionDefaults(tier=Tier.ULTRA)
    assert (await quotas.policy(OTHER_GUILD)).defaults == OptionDefaults()
    latest, first = await QuotaRepository(connection).audit_trail(GUILD_ID, limit=5)
    assert (latest.action, latest.details) == (
        "server-defaults",
        {"tier": "ultra", "aspect_ratio": None},
    )
    assert first.details == {"tier": "standard", "aspect_ratio": "16:9"}


async def test_the_content_settings_leave_the_quota_settings_alone(
    connection: aiosqlite.Connection,
) -> None:
    quotas = quota_service(connection, Settings())
    await quotas.set_budget(GUILD_ID, ADMIN, monthly=500)

    await quotas.set_safety_floor(GUILD_ID, ADMIN, SafetyLevel.BLOCK_MEDIUM_AND_ABOVE)

    assert (await quotas.policy(GUILD_ID)).guild_monthly == 500
