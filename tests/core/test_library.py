"""The prompt library's service on a real job service: what sharing keeps and refuses, browses
that stay in order, Use charging the clicker, and files that go with their entries."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import pytest
from PIL import Image as PillowImage

from bot.core.blocklist import BlocklistService
from bot.core.domain import Job, JobState, Member, Option, SafetyLevel
from bot.core.errors import ChannelUnavailable, InvalidRequest
from bot.core.jobs import JobService
from bot.core.library import (
    LibraryService,
    clean_title,
    parse_tags,
    recipe_of,
    search_terms,
)
from bot.core.library_files import THUMBNAIL_SIDE, LibraryFiles
from bot.core.storage.blocklist import BlocklistRepository
from bot.core.storage.library import LibraryRepository
from bot.core.storage.library_protocol import EntryFilter, LibraryEntry, Sort
from tests.core.job_bench import Bench
from tests.factories import A_MEMBER, GUILD_ID, USER_ID, a_request, a_target

OTHER = Member(guild_id=GUILD_ID, user_id=USER_ID + 1)
ADMIN_ID = USER_ID + 2


class RecordingGallery:
    """A gallery channel that records posts, or refuses them like a channel closed to the bot."""

    def __init__(self) -> None:
        self.posts: dict[int, tuple[int, LibraryEntry, Path]] = {}
        self.deleted: list[tuple[int, int]] = []
        self.closed = False

    async def post_entry(self, channel_id: int, entry: LibraryEntry, image: Path) -> int:
        if self.closed:
            raise ChannelUnavailable(detail="closed")
        message_id = 9000 + len(self.posts)
        self.posts[message_id] = (channel_id, entry, image)
        return message_id

    async def delete_post(self, channel_id: int, message_id: int) -> None:
        self.deleted.append((channel_id, message_id))


@dataclass
class Library:
    service: LibraryService
    jobs: JobService
    bench: Bench
    blocklist: BlocklistService
    gallery: RecordingGallery
    files: LibraryFiles

    async def made(self, prompt: str = "a lighthouse at dusk", member: Member = A_MEMBER) -> Job:
        """A delivered job of ``member``'s, its image on disk."""
        target = a_target(user_id=member.user_id)
        job = (await self.jobs.submit(a_request(prompt), target, member)).jobs[0]
        return await self.bench.ended(job.id)

    async def shared(
        self, title: str = "Lighthouse", prompt: str = "a lighthouse at dusk", tags: str = ""
    ) -> LibraryEntry:
        job = await self.made(prompt)
        return await self.service.share(A_MEMBER, job.id, author_name="Ada", title=title, tags=tags)


@pytest.fixture
async def library(bench: Bench, connection: aiosqlite.Connection, tmp_path: Path) -> Library:
    # One blocklist for sharing and for the jobs, as the composition root wires them.
    blocklist = BlocklistService(repository=BlocklistRepository(connection))
    jobs = await bench.service(blocklist=blocklist)
    await jobs.start()
    gallery = RecordingGallery()
    files = LibraryFiles(tmp_path / "images" / "library")
    service = LibraryService(
        repository=LibraryRepository(connection),
        jobs=jobs,
        blocklist=blocklist,
        files=files,
        gallery=gallery,
        web_gallery_enabled=True,
    )
    return Library(service, jobs, bench, blocklist, gallery, files)


def library_files(library: Library) -> set[str]:
    return {path.name for path in library.files.directory.glob("*")}


async def test_sharing_keeps_a_copy_of_the_image_and_a_thumbnail(library: Library) -> None:
    job = await library.made()

    entry = await library.service.share(
        A_MEMBER, job.id, author_name="Ada", title="  Lighthouse   at dusk ", tags="#Sea, coast"
    )

    assert (entry.title, entry.tags, entry.author_id) == (
        "Lighthouse at dusk",
        ("sea", "coast"),
        USER_ID,
    )
    job.image_paths[0].unlink()  # retention may prune the job's own file: the entry keeps its own
    assert library.files.path(entry.image_name).read_bytes()
    with PillowImage.open(library.files.path(entry.thumbnail_name)) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert max(thumbnail.size) <= THUMBNAIL_SIDE
    assert (entry.width, entry.height) != (0, 0)


async def test_sharing_someone_elses_job_is_refused_and_keeps_nothing(library: Library) -> None:
    job = await library.made()

    with pytest.raises(InvalidRequest, match="made yourself"):
        await library.service.share(OTHER, job.id, author_name="Bo", title="Mine now", tags="")

    assert library_files(library) == set()


async def test_sharing_an_unfinished_job_is_refused(library: Library) -> None:
    job = await library.made()
    # As a job still running would be (its row says so; the image is not posted yet).
    await library.bench.connection.execute(
        "UPDATE jobs SET state = ? WHERE id = ?", (JobState.SUCCEEDED.value, job.id)
    )

    with pytest.raises(InvalidRequest, match="no finished image"):
        await library.service.share(A_MEMBER, job.id, author_name="Ada", title="t", tags="")


async def test_a_blocklisted_title_is_refused_and_stores_nothing(library: Library) -> None:
    await library.blocklist.add(GUILD_ID, ADMIN_ID, "term", "forbidden")
    job = await library.made()

    with pytest.raises(InvalidRequest, match="title or tags"):
        await library.service.share(
            A_MEMBER, job.id, author_name="Ada", title="The FORBIDDEN tower", tags=""
        )
    with pytest.raises(InvalidRequest, match="title or tags"):
        await library.service.share(
            A_MEMBER, job.id, author_name="Ada", title="Tower", tags="forbidden"
        )

    assert await library.service.mine(A_MEMBER) == []
    assert library_files(library) == set()


async def test_a_member_barred_from_sharing_is_refused(library: Library) -> None:
    job = await library.made()
    await library.service.set_barred(GUILD_ID, ADMIN_ID, USER_ID, True)

    with pytest.raises(InvalidRequest, match="stopped you from sharing"):
        await library.service.share(A_MEMBER, job.id, author_name="Ada", title="t", tags="")


async def test_sharing_the_same_image_twice_names_the_first_entry(library: Library) -> None:
    job = await library.made()
    first = await library.service.share(A_MEMBER, job.id, author_name="Ada", title="t", tags="")

    with pytest.raises(InvalidRequest, match=f"entry #{first.id}"):
        await library.service.share(A_MEMBER, job.id, author_name="Ada", title="u", tags="")

    assert len(library_files(library)) == 2  # the first entry's image and thumbnail only


async def test_a_new_entry_is_posted_in_the_gallery_channel(library: Library) -> None:
    await library.service.set_gallery_channel(GUILD_ID, ADMIN_ID, 555)

    entry = await library.shared()

    [(channel_id, posted, image)] = library.gallery.posts.values()
    assert (channel_id, posted.id) == (555, entry.id)
    assert image == library.files.path(entry.image_name)
    assert entry.gallery_message_id in library.gallery.posts


async def test_a_closed_gallery_channel_does_not_stop_a_share(library: Library) -> None:
    await library.service.set_gallery_channel(GUILD_ID, ADMIN_ID, 555)
    library.gallery.closed = True

    entry = await library.shared()

    assert entry.gallery_message_id is None
    assert await library.service.entry(A_MEMBER, entry.id) == entry


async def test_paging_keeps_its_order_while_entries_are_added(library: Library) -> None:
    shared = [await library.shared(f"entry {n}") for n in range(3)]
    first = await library.service.browse(OTHER, Sort.NEWEST, EntryFilter())

    await library.shared("newer")
    second = await library.service.page(OTHER, first.browse.id, first.position + 1)
    await library.shared("newer still")
    third = await library.service.page(OTHER, first.browse.id, second.position + 1)

    assert [first.entry.id, second.entry.id, third.entry.id] == [e.id for e in reversed(shared)]
    assert not third.has_next
    assert first.has_next
    assert not first.has_previous


async def test_paging_skips_an_entry_hidden_since_the_browse_began(library: Library) -> None:
    older, middle, newer = [await library.shared(f"entry {n}") for n in range(3)]
    start = await library.service.browse(OTHER, Sort.NEWEST, EntryFilter())
    await library.service.set_hidden(GUILD_ID, ADMIN_ID, middle.id, True)

    onwards = await library.service.page(OTHER, start.browse.id, 1, step=1)
    back = await library.service.page(OTHER, start.browse.id, 1, step=-1)

    assert (start.entry.id, onwards.entry.id, back.entry.id) == (newer.id, older.id, newer.id)


async def test_a_browse_of_another_server_is_not_shown(library: Library) -> None:
    await library.shared()
    start = await library.service.browse(A_MEMBER, Sort.NEWEST, EntryFilter())
    elsewhere = Member(guild_id=GUILD_ID + 1, user_id=USER_ID)

    with pytest.raises(InvalidRequest, match="expired"):
        await library.service.page(elsewhere, start.browse.id, 0)


async def test_an_empty_library_says_how_to_share(library: Library) -> None:
    with pytest.raises(InvalidRequest, match="Share button"):
        await library.service.browse(A_MEMBER, Sort.NEWEST, EntryFilter())


async def test_searching_ranks_the_title_match_first(library: Library) -> None:
    await library.shared("Harbour", prompt="a lighthouse in fog")
    titled = await library.shared("Lighthouse", prompt="a tower")

    found = await library.service.browse(OTHER, Sort.NEWEST, EntryFilter(query="lighthouse"))

    assert found.entry.id == titled.id
    assert found.count == 2
    assert found.browse.heading == "Best matches for “lighthouse”"


async def test_use_queues_the_recipe_for_the_clicker_and_counts_it(library: Library) -> None:
    entry = await library.shared()
    target = a_target(user_id=OTHER.user_id)

    submission = await library.service.use(OTHER, target, entry.id)

    [job] = submission.jobs
    assert (job.target.user_id, job.request.prompt, job.request.image_count) == (
        OTHER.user_id,
        entry.recipe.prompt,
        1,
    )
    assert job.shared_from is not None
    assert (job.shared_from.entry_id, job.shared_from.title) == (entry.id, "Lighthouse")
    assert job.shared_from.author_id == USER_ID
    assert job.remix_of == entry.job_id
    used = await library.service.entry(OTHER, entry.id)
    assert used.uses == 1
    stored = await library.bench.repository.get(job.id)
    assert stored is not None
    assert stored.shared_from == job.shared_from


async def test_use_with_edited_texts_queues_them(library: Library) -> None:
    entry = await library.shared()

    submission = await library.service.use(
        OTHER,
        a_target(user_id=OTHER.user_id),
        entry.id,
        prompt="a windmill at dusk",
        negative_prompt="people",
    )

    request = submission.jobs[0].request
    assert (request.prompt, request.negative_prompt) == ("a windmill at dusk", "people")


async def test_using_a_hidden_entry_is_refused_and_queues_nothing(library: Library) -> None:
    entry = await library.shared()
    await library.service.set_hidden(GUILD_ID, ADMIN_ID, entry.id, True)
    jobs_before = await library.bench.repository.unfinished()

    with pytest.raises(InvalidRequest, match="no longer in this server's library"):
        await library.service.use(OTHER, a_target(user_id=OTHER.user_id), entry.id)

    assert await library.bench.repository.unfinished() == jobs_before


async def test_a_use_refused_by_the_blocklist_is_not_counted(library: Library) -> None:
    entry = await library.shared()
    await library.blocklist.add(GUILD_ID, ADMIN_ID, "term", "lighthouse")

    with pytest.raises(InvalidRequest):
        await library.service.use(OTHER, a_target(user_id=OTHER.user_id), entry.id)

    assert (await library.service.entry(OTHER, entry.id)).uses == 0


async def test_deleting_an_entry_removes_its_files_and_gallery_post(library: Library) -> None:
    await library.service.set_gallery_channel(GUILD_ID, ADMIN_ID, 555)
    entry = await library.shared()

    await library.service.delete_own(A_MEMBER, entry.id)

    assert library_files(library) == set()
    assert library.gallery.deleted == [(555, entry.gallery_message_id)]


async def test_a_member_cannot_delete_anothers_entry(library: Library) -> None:
    entry = await library.shared()

    with pytest.raises(InvalidRequest, match="not one of your"):
        await library.service.delete_own(OTHER, entry.id)

    assert len(library_files(library)) == 2


async def test_forgetting_a_member_removes_their_entries_files_and_likes(library: Library) -> None:
    entry = await library.shared()
    kept_job = await library.made("a windmill", member=OTHER)
    kept = await library.service.share(OTHER, kept_job.id, author_name="Bo", title="w", tags="")
    await library.service.like(A_MEMBER, kept.id)

    forgotten = await library.service.forget(GUILD_ID, USER_ID)

    assert ([e.id for e in forgotten.entries], forgotten.likes) == ([entry.id], 1)
    assert library_files(library) == {kept.image_name, kept.thumbnail_name}
    assert (await library.service.entry(OTHER, kept.id)).likes == 0


async def test_reporting_twice_is_one_report(library: Library) -> None:
    entry = await library.shared()

    await library.service.report(OTHER, entry.id, "spam " * 100)
    await library.service.report(OTHER, entry.id, "still spam")

    [reported] = await library.service.reported(GUILD_ID)
    assert (reported.reports, reported.last_reason) == (1, "still spam")


async def test_the_web_gallery_is_closed_until_the_operator_enables_it(
    library: Library, connection: aiosqlite.Connection
) -> None:
    closed = LibraryService(
        repository=LibraryRepository(connection),
        jobs=library.jobs,
        blocklist=library.blocklist,
        files=library.files,
    )

    with pytest.raises(InvalidRequest, match="gallery is switched off"):
        await closed.set_web_gallery(GUILD_ID, ADMIN_ID, True, guild_name="Server")
    await library.service.set_web_gallery(GUILD_ID, ADMIN_ID, True, guild_name="Server")

    assert await closed.web_settings(GUILD_ID) is None
    settings = await library.service.web_settings(GUILD_ID)
    assert settings is not None
    assert settings.guild_name == "Server"


async def test_a_recipe_leaves_out_what_the_provider_did_not_apply(library: Library) -> None:
    made = await library.made()
    job = dataclasses.replace(
        made,
        request=a_request(negative_prompt="fog", seed=7, chosen=frozenset({Option.SEED})),
        not_applied=frozenset({Option.SEED}),
        image_paths=(made.image_paths[0].with_suffix(".png"),),
    )

    recipe = recipe_of(job)

    assert (recipe.negative_prompt, recipe.seed, recipe.chosen) == ("fog", None, frozenset())
    assert recipe.output_format.value == "png"
    assert recipe.safety is SafetyLevel.BLOCK_MEDIUM_AND_ABOVE


def test_tags_are_words_case_folded_once_each() -> None:
    assert parse_tags("#Sci-Fi, sci-fi  Watercolour,,") == ("sci-fi", "watercolour")


@pytest.mark.parametrize("text", ["a/b", "x" * 31, "a b c d e f"])
def test_a_bad_tag_list_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_tags(text)


def test_a_blank_title_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="title"):
        clean_title(" \u200b ")


def test_a_search_quotes_every_word_and_prefixes_the_last() -> None:
    assert search_terms('Sea" OR near(') == '"sea" "or" "near"*'


def test_a_search_without_words_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="word"):
        search_terms('" * ( )')
