"""The blocklist table: entries per guild, each change written with its audit row."""

from __future__ import annotations

import aiosqlite

from bot.core.storage.blocklist import BlocklistRepository
from bot.core.storage.protocols import AuditFields, BlocklistEntry
from bot.core.storage.quotas import QuotaRepository
from tests.conftest import table_snapshot
from tests.factories import GUILD_ID, USER_ID

OTHER_GUILD = GUILD_ID + 1


def audit(action: str) -> AuditFields:
    return AuditFields(actor_id=USER_ID, action=action, details={}, now=1_700_000_000.0)


async def add(
    repository: BlocklistRepository, text: str, *, guild_id: int = GUILD_ID, max_entries: int = 10
) -> BlocklistEntry:
    added = await repository.add(
        guild_id, "term", text, max_entries=max_entries, audit=audit("blocklist-add")
    )
    assert isinstance(added, BlocklistEntry)
    return added


async def test_entries_are_listed_per_guild_oldest_first(connection: aiosqlite.Connection) -> None:
    repository = BlocklistRepository(connection)
    first = await add(repository, "foo")
    await add(repository, "elsewhere", guild_id=OTHER_GUILD)
    second = await repository.add(
        GUILD_ID, "regex", "ba[rz]", max_entries=10, audit=audit("blocklist-add")
    )

    assert await repository.entries(GUILD_ID) == [first, second]
    assert [entry.text for entry in await repository.entries(OTHER_GUILD)] == ["elsewhere"]


async def test_an_added_entry_is_audited_with_its_id_kind_and_text(
    connection: aiosqlite.Connection,
) -> None:
    added = await add(BlocklistRepository(connection), "foo")

    [row] = await QuotaRepository(connection).audit_trail(GUILD_ID, limit=5)

    assert (row.actor_id, row.action) == (USER_ID, "blocklist-add")
    assert row.details == {"id": added.id, "kind": "term", "entry": "foo"}


async def test_a_removed_entry_is_gone_and_audited(connection: aiosqlite.Connection) -> None:
    repository = BlocklistRepository(connection)
    added = await add(repository, "foo")

    removed = await repository.remove(GUILD_ID, added.id, audit=audit("blocklist-remove"))

    assert removed == added
    assert await repository.entries(GUILD_ID) == []
    latest, _ = await QuotaRepository(connection).audit_trail(GUILD_ID, limit=5)
    assert (latest.action, latest.details["entry"]) == ("blocklist-remove", "foo")


async def test_removing_another_guilds_entry_changes_nothing(
    connection: aiosqlite.Connection,
) -> None:
    repository = BlocklistRepository(connection)
    theirs = await add(repository, "foo", guild_id=OTHER_GUILD)
    before = await table_snapshot(connection)

    removed = await repository.remove(GUILD_ID, theirs.id, audit=audit("blocklist-remove"))

    assert removed is None
    assert await table_snapshot(connection) == before


async def test_a_duplicate_writes_nothing(connection: aiosqlite.Connection) -> None:
    repository = BlocklistRepository(connection)
    await add(repository, "foo")
    before = await table_snapshot(connection)

    outcome = await repository.add(
        GUILD_ID, "term", "foo", max_entries=10, audit=audit("blocklist-add")
    )

    assert outcome == "duplicate"
    assert await table_snapshot(connection) == before


async def test_a_guild_at_the_cap_gets_no_more_entries_and_no_audit_row(
    connection: aiosqlite.Connection,
) -> None:
    repository = BlocklistRepository(connection)
    await add(repository, "foo", max_entries=2)
    await add(repository, "bar", max_entries=2)
    before = await table_snapshot(connection)

    outcome = await repository.add(
        GUILD_ID, "term", "baz", max_entries=2, audit=audit("blocklist-add")
    )

    assert outcome == "full"
    assert await table_snapshot(connection) == before


async def test_the_cap_counts_each_guild_on_its_own(connection: aiosqlite.Connection) -> None:
    repository = BlocklistRepository(connection)
    await add(repository, "foo", guild_id=OTHER_GUILD, max_entries=1)

    await add(repository, "foo", max_entries=1)
