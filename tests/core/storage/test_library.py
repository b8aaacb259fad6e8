"""The prompt library's rows: search ranking, likes under concurrent clicks, what deleting and
forgetting take with them, and the checks that share a transaction with a write."""

from __future__ import annotations

import asyncio
import secrets

import aiosqlite

from bot.core.domain import AspectRatio, OutputFormat, SafetyLevel, Tier
from bot.core.library import search_terms
from bot.core.storage.jobs import JobRepository
from bot.core.storage.library import LibraryRepository
from bot.core.storage.library_protocol import EntryFilter, LibraryEntry, NewEntry, Recipe, Sort
from bot.core.storage.protocols import AuditFields
from tests.conftest import stored_job
from tests.factories import GUILD_ID, USER_ID

OTHER_GUILD = GUILD_ID + 1
OTHER_MEMBER = USER_ID + 1
ADMIN = USER_ID + 2


def audit(action: str) -> AuditFields:
    return AuditFields(actor_id=ADMIN, action=action, details={}, now=1_800_000_000.0)


async def share(
    connection: aiosqlite.Connection,
    title: str = "Lighthouse",
    *,
    prompt: str = "a lighthouse at dusk",
    tags: tuple[str, ...] = (),
    guild_id: int = GUILD_ID,
    author_id: int = USER_ID,
    tier: Tier = Tier.FAST,
) -> LibraryEntry:
    job_id = (await stored_job(JobRepository(connection), callback_token=secrets.token_hex(8))).id
    added = await LibraryRepository(connection).add(
        NewEntry(
            guild_id=guild_id,
            author_id=author_id,
            author_name="Ada",
            job_id=job_id,
            title=title,
            tags=tags,
            recipe=Recipe(
                prompt=prompt,
                negative_prompt=None,
                tier=tier,
                aspect_ratio=AspectRatio.SQUARE,
                safety=SafetyLevel.BLOCK_MEDIUM_AND_ABOVE,
                output_format=OutputFormat.JPG,
                seed=None,
            ),
            image_name=f"{job_id}.jpg",
            thumbnail_name=f"{job_id}-thumb.jpg",
            width=1024,
            height=1024,
            created_at=1_800_000_000.0 + job_id,
        )
    )
    assert isinstance(added, LibraryEntry)
    return added


async def searched(repository: LibraryRepository, query: str) -> list[int]:
    return await repository.matching_ids(
        GUILD_ID, EntryFilter(query=search_terms(query)), Sort.NEWEST, limit=50
    )


async def test_search_ranks_a_title_match_above_a_tag_match_above_a_prompt_match(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    in_prompt = await share(connection, "Harbour", prompt="a foggy harbour with a lighthouse")
    in_tags = await share(connection, "Coast at night", prompt="waves", tags=("lighthouse",))
    in_title = await share(connection, "Lighthouse", prompt="a tower by the sea")

    assert await searched(repository, "lighthouse") == [in_title.id, in_tags.id, in_prompt.id]


async def test_search_reads_a_members_quotes_and_operators_as_words(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection, "Near the sea", prompt="a lighthouse")

    assert await searched(repository, 'sea" NEAR(') == [entry.id]


async def test_search_takes_the_last_word_as_a_prefix(connection: aiosqlite.Connection) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection, "Watercolour garden")

    assert await searched(repository, "waterc") == [entry.id]


async def test_search_finds_only_visible_entries_of_the_guild(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    shown = await share(connection, "Lighthouse one")
    hidden = await share(connection, "Lighthouse two")
    await share(connection, "Lighthouse three", guild_id=OTHER_GUILD)
    await repository.set_hidden(GUILD_ID, hidden.id, True, audit=None)

    assert await searched(repository, "lighthouse") == [shown.id]


async def test_a_changed_title_is_searched_by_its_new_words(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection, "Lighthouse", prompt="a tower by the sea")
    await connection.execute(
        "UPDATE library_entries SET title = 'Windmill' WHERE id = ?", (entry.id,)
    )

    assert await searched(repository, "lighthouse") == []
    assert await searched(repository, "windmill") == [entry.id]


async def test_browsing_orders_by_likes_then_by_the_newer_entry(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    older, liked, newer = [await share(connection, title) for title in ("a", "b", "c")]
    await repository.toggle_like(liked.id, OTHER_MEMBER, now=1.0)

    ids = await repository.matching_ids(GUILD_ID, EntryFilter(), Sort.MOST_LIKED, limit=10)

    assert ids == [liked.id, newer.id, older.id]


async def test_browsing_filters_by_tag_tier_and_author(connection: aiosqlite.Connection) -> None:
    repository = LibraryRepository(connection)
    wanted = await share(connection, "a", tags=("sci-fi",), tier=Tier.ULTRA)
    await share(connection, "b", tags=("sci-fi",), tier=Tier.FAST)
    await share(connection, "c", tags=("sci-fi",), tier=Tier.ULTRA, author_id=OTHER_MEMBER)
    await share(connection, "d", tier=Tier.ULTRA)

    where = EntryFilter(tag="sci-fi", tier=Tier.ULTRA, author_id=USER_ID)
    ids = await repository.matching_ids(GUILD_ID, where, Sort.NEWEST, limit=10)

    assert ids == [wanted.id]


async def test_a_page_counts_every_match_beyond_itself(connection: aiosqlite.Connection) -> None:
    repository = LibraryRepository(connection)
    entries = [await share(connection, f"entry {n}") for n in range(5)]

    page, total = await repository.page(GUILD_ID, EntryFilter(), Sort.NEWEST, offset=2, limit=2)

    assert total == 5
    assert [entry.id for entry in page] == [entries[2].id, entries[1].id]


async def test_simultaneous_likes_by_many_members_count_each_once(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection)

    results = await asyncio.gather(
        *(repository.toggle_like(entry.id, member, now=1.0) for member in range(1, 51))
    )

    assert all(result is not None and result.liked for result in results)
    stored = await repository.get(entry.id)
    assert stored is not None
    assert stored.likes == 50
    assert sorted(result.likes for result in results if result) == list(range(1, 51))


async def test_simultaneous_clicks_by_one_member_toggle_in_turn(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection)

    results = await asyncio.gather(
        *(repository.toggle_like(entry.id, OTHER_MEMBER, now=1.0) for _ in range(5))
    )

    assert [result.liked for result in results if result] == [True, False, True, False, True]
    stored = await repository.get(entry.id)
    assert stored is not None
    assert stored.likes == 1
    async with connection.execute("SELECT COUNT(*) FROM library_likes") as cursor:
        assert tuple(await cursor.fetchone() or ()) == (1,)


async def test_liking_a_deleted_entry_stores_nothing(connection: aiosqlite.Connection) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection)
    await repository.delete(GUILD_ID, entry.id, audit=None)

    assert await repository.toggle_like(entry.id, OTHER_MEMBER, now=1.0) is None
    async with connection.execute("SELECT COUNT(*) FROM library_likes") as cursor:
        assert tuple(await cursor.fetchone() or ()) == (0,)


async def test_deleting_an_entry_takes_its_tags_likes_reports_and_index_rows(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection, tags=("sea",))
    await repository.toggle_like(entry.id, OTHER_MEMBER, now=1.0)
    await repository.report(entry.id, OTHER_MEMBER, "spam", now=1.0)

    deleted = await repository.delete(GUILD_ID, entry.id, audit=audit("library-delete"))

    assert deleted is not None
    assert deleted.id == entry.id
    for table in ("library_entries", "library_tags", "library_likes", "library_reports"):
        async with connection.execute(f"SELECT COUNT(*) FROM {table}") as cursor:  # noqa: S608
            assert tuple(await cursor.fetchone() or ()) == (0,), table
    assert await searched(repository, "lighthouse") == []


async def test_another_guilds_admin_cannot_delete_or_hide_an_entry(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection)

    assert await repository.delete(OTHER_GUILD, entry.id, audit=audit("library-delete")) is None
    assert await repository.set_hidden(OTHER_GUILD, entry.id, True, audit=None) is None
    assert await repository.get(entry.id) == entry


async def test_forgetting_a_member_takes_their_entries_and_their_likes_off_the_counts(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    theirs = await share(connection, "theirs", author_id=OTHER_MEMBER)
    mine = await share(connection, "mine")
    elsewhere = await share(connection, "elsewhere", guild_id=OTHER_GUILD)
    await repository.toggle_like(mine.id, OTHER_MEMBER, now=1.0)
    await repository.toggle_like(mine.id, USER_ID, now=1.0)
    await repository.toggle_like(elsewhere.id, OTHER_MEMBER, now=1.0)

    forgotten = await repository.forget_member(GUILD_ID, OTHER_MEMBER, audit=None)

    assert [entry.id for entry in forgotten.entries] == [theirs.id]
    assert forgotten.likes == 1
    assert await repository.get(theirs.id) is None
    kept = await repository.get(mine.id)
    assert kept is not None
    assert kept.likes == 1
    other_server = await repository.get(elsewhere.id)
    assert other_server is not None
    assert other_server.likes == 1  # another server's library is not this server's to clear


async def test_a_barred_member_cannot_add_an_entry(connection: aiosqlite.Connection) -> None:
    repository = LibraryRepository(connection)
    assert await repository.set_barred(GUILD_ID, USER_ID, True, audit=audit("library-bar"))

    refused = await repository.add(
        NewEntry(
            guild_id=GUILD_ID,
            author_id=USER_ID,
            author_name="Ada",
            job_id=(
                await stored_job(JobRepository(connection), callback_token=secrets.token_hex(8))
            ).id,
            title="t",
            tags=(),
            recipe=(await share(connection, author_id=OTHER_MEMBER)).recipe,
            image_name="x.jpg",
            thumbnail_name="x-thumb.jpg",
            width=1,
            height=1,
            created_at=1.0,
        )
    )

    assert refused == "barred"
    assert not await repository.set_barred(GUILD_ID, USER_ID, True, audit=audit("library-bar"))


async def test_a_job_is_shared_once(connection: aiosqlite.Connection) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection)
    again = NewEntry(
        guild_id=GUILD_ID,
        author_id=USER_ID,
        author_name="Ada",
        job_id=entry.job_id or 0,
        title="again",
        tags=(),
        recipe=entry.recipe,
        image_name="y.jpg",
        thumbnail_name="y-thumb.jpg",
        width=1,
        height=1,
        created_at=1.0,
    )

    assert await repository.add(again) == "shared"


async def test_a_second_report_by_the_same_member_updates_its_reason(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    entry = await share(connection)

    assert await repository.report(entry.id, OTHER_MEMBER, "spam", now=1.0)
    assert not await repository.report(entry.id, OTHER_MEMBER, "really spam", now=2.0)
    assert await repository.report(entry.id, ADMIN, "", now=3.0)

    [reported] = await repository.reported(GUILD_ID, limit=10)
    assert (reported.entry.id, reported.reports) == (entry.id, 2)


async def test_tags_are_suggested_by_prefix_most_used_first(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    await share(connection, "a", tags=("sea", "sci-fi"))
    await share(connection, "b", tags=("sci-fi",))
    await share(connection, "c", tags=("portrait",))

    assert await repository.tags(GUILD_ID, "s", limit=25) == ["sci-fi", "sea"]


async def test_an_old_browse_is_forgotten_when_a_new_one_starts(
    connection: aiosqlite.Connection,
) -> None:
    repository = LibraryRepository(connection)
    old = await repository.start_browse(
        GUILD_ID, USER_ID, [3, 2, 1], "Newest first", now=100.0, forget_before=0.0
    )
    new = await repository.start_browse(
        GUILD_ID, USER_ID, [1], "Newest first", now=200.0, forget_before=150.0
    )

    assert await repository.browse(old.id) is None
    assert await repository.browse(new.id) == new
    assert new.entry_ids == (1,)
