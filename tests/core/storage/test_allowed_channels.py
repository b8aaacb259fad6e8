"""Allowed channels: stored per guild with their audit rows, and part of the cached policy."""

from __future__ import annotations

import aiosqlite
import pytest

from bot.core.config import Settings
from bot.core.errors import ChannelNotAllowed
from bot.core.quotas import check_channel_allowed
from bot.core.storage.quotas import QuotaRepository
from tests.factories import GUILD_ID, a_target
from tests.services import quota_service

ADMIN = 7
CHANNEL, OTHER_CHANNEL, THREAD = 101, 102, 103


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate({})


async def test_channels_are_added_and_removed_per_guild_with_audit_rows(
    connection: aiosqlite.Connection, settings: Settings
) -> None:
    quotas = quota_service(connection, settings)

    assert await quotas.set_channel_allowed(GUILD_ID, ADMIN, CHANNEL, allowed=True)
    assert await quotas.set_channel_allowed(GUILD_ID, ADMIN, OTHER_CHANNEL, allowed=True)
    assert await quotas.set_channel_allowed(GUILD_ID, ADMIN, CHANNEL, allowed=False)

    repository = QuotaRepository(connection)
    assert (await repository.policy(GUILD_ID)).allowed_channels == {OTHER_CHANNEL}
    assert (await repository.policy(GUILD_ID + 1)).allowed_channels == frozenset()
    trail = await quotas.audit_trail(GUILD_ID)
    assert [(entry.action, entry.details) for entry in reversed(trail)] == [
        ("channels-add", {"channel_id": CHANNEL}),
        ("channels-add", {"channel_id": OTHER_CHANNEL}),
        ("channels-remove", {"channel_id": CHANNEL}),
    ]


async def test_a_change_that_changes_nothing_is_not_audited(
    connection: aiosqlite.Connection, settings: Settings
) -> None:
    quotas = quota_service(connection, settings)
    await quotas.set_channel_allowed(GUILD_ID, ADMIN, CHANNEL, allowed=True)

    again = await quotas.set_channel_allowed(GUILD_ID, ADMIN, CHANNEL, allowed=True)
    unlisted = await quotas.set_channel_allowed(GUILD_ID, ADMIN, OTHER_CHANNEL, allowed=False)

    assert (again, unlisted) == (False, False)
    assert len(await quotas.audit_trail(GUILD_ID)) == 1


async def test_the_cached_policy_sees_a_channel_change_at_once(
    connection: aiosqlite.Connection, settings: Settings
) -> None:
    quotas = quota_service(connection, settings)
    assert (await quotas.policy(GUILD_ID)).allowed_channels == frozenset()  # now cached

    await quotas.set_channel_allowed(GUILD_ID, ADMIN, CHANNEL, allowed=True)

    assert (await quotas.policy(GUILD_ID)).allowed_channels == {CHANNEL}


async def test_a_thread_under_an_allowed_channel_is_allowed(
    connection: aiosqlite.Connection, settings: Settings
) -> None:
    quotas = quota_service(connection, settings)
    await quotas.set_channel_allowed(GUILD_ID, ADMIN, CHANNEL, allowed=True)
    policy = await quotas.policy(GUILD_ID)

    check_channel_allowed(policy, a_target(channel_id=THREAD, parent_channel_id=CHANNEL))

    with pytest.raises(ChannelNotAllowed):
        check_channel_allowed(policy, a_target(channel_id=THREAD, parent_channel_id=OTHER_CHANNEL))


def test_the_refusal_names_a_few_allowed_channels_and_counts_the_rest() -> None:
    refusal = ChannelNotAllowed(allowed=frozenset({5, 1, 4, 2, 3}))

    assert "Please use <#1>, <#2>, <#3> (and 2 more)." in refusal.user_message
