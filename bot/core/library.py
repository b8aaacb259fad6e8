"""The community prompt library (issue 12): share, browse, search, like, use and moderate.

An entry is a member's finished job made public in their server: its prompt and the options
it actually ran with, a title and tags, and the bot's own copy of its image. Every member of
the server can browse and search the entries, like them, and Use one, which queues a job for
the clicker through ``JobService.submit`` exactly as /imagine does (channel, quotas, tier
roles, safety floor, blocklist). Choices, and why:

- A browse or search is stored as the ordered ids it found (at most ``BROWSE_LIMIT``), and
  Previous and Next move through that list, so the order a member pages through does not shift
  while others share, like or use entries; an entry hidden or deleted since is skipped.
- Titles and tags go through the server's blocklist, as prompts do: they are shown to everyone.
- Use makes one image (a library entry is one image's recipe), with the entry's seed when the
  job that made it applied one, so the clicker gets the same picture where providers allow.
- A hidden entry is gone for members at once (browse, search, Use, the web gallery); only
  admins see it, in the reports list, and can show it again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.core.blocklist import BlocklistService
from bot.core.domain import (
    DiscordTarget,
    GenerationRequest,
    Job,
    JobState,
    Member,
    Option,
    OutputFormat,
    SharedOrigin,
)
from bot.core.errors import InvalidRequest, PromptBlocked
from bot.core.jobs import JobService, Reply, Submission
from bot.core.library_files import LibraryFiles
from bot.core.modlog import ModLog
from bot.core.storage.library_protocol import (
    Browse,
    EntryFilter,
    ForgottenMember,
    LibraryEntry,
    LibrarySettings,
    LibraryStore,
    Like,
    NewEntry,
    Recipe,
    ReportedEntry,
    Sort,
)
from bot.core.storage.protocols import AuditFields
from bot.core.text import is_blank, normalise

log = logging.getLogger(__name__)

# Discord's limit for a text input is 4000, but a title is shown as an embed's title (256)
# and in the gallery's grid: a short line.
MAX_TITLE_LENGTH = 100
MAX_TAGS = 5
MAX_TAG_LENGTH = 30
MAX_REASON_LENGTH = 300
# A browse keeps this many ids (a 500-id list is about 10 kB in its row).
BROWSE_LIMIT = 500
# Browses older than this are forgotten; their buttons then say to start again.
BROWSE_SECONDS = 24 * 3600.0
# Autocomplete shows at most 25 choices (Discord's limit).
CHOICES_LIMIT = 25
# The reports list shows this many entries, most reported first.
REPORTS_SHOWN = 15

_TAG_SEPARATORS = re.compile(r"[,\s]+")
# A tag is one word: letters, digits, marks, hyphens and underscores of any script.
_TAG = re.compile(r"[\w\-]+")
# The words of a search; everything else (FTS5's operators and quotes among it) separates.
_SEARCH_WORD = re.compile(r"\w+")

EMPTY_LIBRARY = (
    "Nothing has been shared on this server yet. Share an image with the Share button under "
    "your result, or with /prompts share."
)
NO_MATCHES = "No shared prompts match that. Try fewer words, or /prompts browse."
GONE = "That shared prompt is no longer in this server's library."
EXPIRED_BROWSE = "This list has expired. Start again with /prompts browse or /prompts search."
BARRED = "An admin of this server has stopped you from sharing prompts here."
TITLE_OR_TAGS_BLOCKED = (
    "Your title or tags use a word this server does not allow. Please reword them. Nothing "
    "was shared."
)


class GalleryPoster(Protocol):
    """Posts new entries in a server's gallery channel (the Discord side implements it)."""

    async def post_entry(self, channel_id: int, entry: LibraryEntry, image: Path) -> int:
        """Post the entry, returning the message's id; raise ChannelUnavailable when the
        channel is gone or closed to the bot."""

    async def delete_post(self, channel_id: int, message_id: int) -> None:
        """Remove an entry's post (a post already gone is fine)."""


@dataclass(frozen=True, slots=True)
class BrowsePage:
    """One entry of a browse and where it stands in it."""

    browse: Browse
    position: int
    entry: LibraryEntry

    @property
    def count(self) -> int:
        return len(self.browse.entry_ids)

    @property
    def has_previous(self) -> bool:
        return self.position > 0

    @property
    def has_next(self) -> bool:
        return self.position < self.count - 1


def clean_title(title: str) -> str:
    title = " ".join(title.split())
    if is_blank(title):
        raise InvalidRequest("Please give your shared prompt a title.")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidRequest(f"A title may be at most {MAX_TITLE_LENGTH} characters long.")
    return title


def parse_tags(text: str | None) -> tuple[str, ...]:
    """Tags from what a member typed: separated by commas or spaces, a leading ``#``
    dropped, compared as normalised (case-folded) words, each listed once, in order."""
    tags: list[str] = []
    for word in _TAG_SEPARATORS.split(text or ""):
        tag = normalise(word.lstrip("#"))
        if not tag or tag in tags:
            continue
        if not _TAG.fullmatch(tag) or len(tag) > MAX_TAG_LENGTH:
            raise InvalidRequest(
                f"A tag is one word of letters, digits or hyphens, at most {MAX_TAG_LENGTH} "
                f"characters long (like `watercolour` or `sci-fi`)."
            )
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidRequest(f"An entry may have at most {MAX_TAGS} tags.")
    return tuple(tags)


def search_terms(query: str) -> str:
    """A member's search as an FTS5 query: each word quoted (so no text of theirs is read as
    FTS5 syntax), all of them required, the last one also as a prefix (what they were still
    typing). InvalidRequest when it holds no word."""
    words = _SEARCH_WORD.findall(normalise(query))[:20]
    if not words:
        raise InvalidRequest("Type a word or two to search for.")
    quoted = [f'"{word}"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def recipe_of(job: Job) -> Recipe:
    """The options the job actually ran with: a chosen option the provider could not apply
    is left out, and the format is the one its image really has."""
    request = job.request
    not_applied = job.not_applied
    suffix = job.image_paths[0].suffix.lstrip(".").lower() if job.image_paths else ""
    output_format = OutputFormat(suffix) if suffix in set(OutputFormat) else request.output_format
    return Recipe(
        prompt=request.prompt,
        negative_prompt=None if Option.NEGATIVE_PROMPT in not_applied else request.negative_prompt,
        tier=request.tier,
        aspect_ratio=request.aspect_ratio,
        safety=request.safety,
        output_format=output_format,
        seed=None if Option.SEED in not_applied else request.seed,
        chosen=request.chosen - not_applied,
    )


def request_of(
    recipe: Recipe, *, prompt: str | None = None, negative: str | None = None
) -> GenerationRequest:
    """The request Use queues: the recipe, with the member's edited texts (Edit & use)."""
    return GenerationRequest(
        prompt=recipe.prompt if prompt is None else prompt,
        tier=recipe.tier,
        aspect_ratio=recipe.aspect_ratio,
        safety=recipe.safety,
        output_format=recipe.output_format,
        negative_prompt=recipe.negative_prompt if prompt is None else negative,
        seed=recipe.seed,
        image_count=1,
        chosen=recipe.chosen,
    )


class LibraryService:
    def __init__(
        self,
        *,
        repository: LibraryStore,
        jobs: JobService,
        blocklist: BlocklistService,
        files: LibraryFiles,
        mod_log: ModLog | None = None,
        gallery: GalleryPoster | None = None,
        web_gallery_enabled: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._jobs = jobs
        self._blocklist = blocklist
        self._mod_log = mod_log
        self._files = files
        self._gallery = gallery
        self._web_gallery_enabled = web_gallery_enabled
        self._clock = clock

    @property
    def files(self) -> LibraryFiles:
        return self._files

    # ------------------------------------------------------------------------- sharing

    async def shareable(self, member: Member) -> list[Job]:
        """The member's latest finished jobs here that still have an image (autocomplete)."""
        return [
            job
            for job in await self._jobs.recent(member)
            if job.image_paths and job.state in (JobState.DELIVERED, JobState.UNDELIVERABLE)
        ]

    async def share(
        self, member: Member, job_id: int, *, author_name: str, title: str, tags: str | None
    ) -> LibraryEntry:
        """Share one of the member's own finished jobs as a new entry (and post it in the
        gallery channel, best effort). InvalidRequest, with nothing stored, for someone
        else's job, an unfinished one, a bad or blocked title or tags, a member barred from
        sharing, or a job already shared."""
        job = await self._jobs.job(job_id)
        if (job.target.guild_id, job.target.user_id) != (member.guild_id, member.user_id):
            raise InvalidRequest("You can only share images you made yourself on this server.")
        if not job.image_paths or job.state not in (JobState.DELIVERED, JobState.UNDELIVERABLE):
            raise InvalidRequest("That job has no finished image to share.")
        clean = clean_title(title)
        tag_list = parse_tags(tags)
        try:
            await self._blocklist.check(member, clean, " ".join(tag_list))
        except PromptBlocked as refusal:  # the blocklist has logged which entry matched
            raise InvalidRequest(TITLE_OR_TAGS_BLOCKED) from refusal
        if await self._repository.is_barred(member.guild_id, member.user_id):
            raise InvalidRequest(BARRED)
        await self._refuse_shared_again(member.guild_id, job.id)
        kept = await self._files.keep(job.image_paths[0])
        try:
            added = await self._repository.add(
                NewEntry(
                    guild_id=member.guild_id,
                    author_id=member.user_id,
                    author_name=author_name[:MAX_TITLE_LENGTH],
                    job_id=job.id,
                    title=clean,
                    tags=tag_list,
                    recipe=recipe_of(job),
                    image_name=kept.image_name,
                    thumbnail_name=kept.thumbnail_name,
                    width=kept.width,
                    height=kept.height,
                    created_at=self._clock(),
                )
            )
        except BaseException:
            await self._files.remove(kept.image_name, kept.thumbnail_name)
            raise
        if isinstance(added, str):
            await self._files.remove(kept.image_name, kept.thumbnail_name)
            if added == "barred":
                raise InvalidRequest(BARRED)
            await self._refuse_shared_again(member.guild_id, job.id)
            raise InvalidRequest("That image has just been shared.")
        log.info("library entry %d shared by member %d of guild %d", added.id, *_who(member))
        return await self._post_in_gallery(added)

    async def _refuse_shared_again(self, guild_id: int, job_id: int) -> None:
        existing = await self._repository.entry_for_job(guild_id, job_id)
        if existing is not None:
            raise InvalidRequest(
                f"You already shared that image, as entry #{existing.id}. See /prompts mine."
            )

    async def _post_in_gallery(self, entry: LibraryEntry) -> LibraryEntry:
        channel_id = (await self._repository.settings(entry.guild_id)).gallery_channel_id
        if channel_id is None or self._gallery is None:
            return entry
        try:
            message_id = await self._gallery.post_entry(
                channel_id, entry, self._files.path(entry.image_name)
            )
        except Exception:
            log.warning(
                "guild %d: entry %d could not be posted in the gallery channel",
                entry.guild_id,
                entry.id,
                exc_info=True,
            )
            return entry
        await self._repository.set_gallery_post(entry.id, channel_id, message_id)
        return await self._repository.get(entry.id) or entry

    # ------------------------------------------------------------------------- browsing

    async def browse(self, member: Member, sort: Sort, where: EntryFilter) -> BrowsePage:
        """Start a browse (``where.query`` set: a search, ranked by relevance)."""
        heading = _heading(sort, where)
        if where.query is not None:
            where = EntryFilter(
                query=search_terms(where.query),
                tag=where.tag,
                tier=where.tier,
                author_id=where.author_id,
            )
        if where.tag is not None:
            where = EntryFilter(
                query=where.query,
                tag=normalise(where.tag.lstrip("#")),
                tier=where.tier,
                author_id=where.author_id,
            )
        ids = await self._repository.matching_ids(member.guild_id, where, sort, limit=BROWSE_LIMIT)
        if not ids:
            unfiltered = where == EntryFilter()
            raise InvalidRequest(EMPTY_LIBRARY if unfiltered else NO_MATCHES)
        now = self._clock()
        started = await self._repository.start_browse(
            member.guild_id,
            member.user_id,
            ids,
            heading,
            now=now,
            forget_before=now - BROWSE_SECONDS,
        )
        return await self.page(member, started.id, 0)

    async def page(
        self, member: Member, browse_id: int, position: int, step: int = 1
    ) -> BrowsePage:
        """The browse's entry at ``position``, or the nearest one still visible in the
        direction of ``step`` (then the other way): hidden and deleted ones are skipped."""
        browse = await self._repository.browse(browse_id)
        if browse is None or browse.guild_id != member.guild_id:
            raise InvalidRequest(EXPIRED_BROWSE)
        ids = browse.entry_ids
        position = min(max(position, 0), len(ids) - 1)
        forward = range(position, len(ids)) if step >= 0 else range(position, -1, -1)
        backward = range(position - 1, -1, -1) if step >= 0 else range(position + 1, len(ids))
        for index in (*forward, *backward):
            entry = await self._repository.get(ids[index])
            if entry is not None and self._visible_to_members(entry, member.guild_id):
                return BrowsePage(browse, index, entry)
        raise InvalidRequest("Every entry of this list has been removed since. " + EXPIRED_BROWSE)

    async def entry(self, member: Member, entry_id: int) -> LibraryEntry:
        """A visible entry of the member's server; InvalidRequest (GONE) for any other id."""
        entry = await self._repository.get(entry_id)
        if entry is None or not self._visible_to_members(entry, member.guild_id):
            raise InvalidRequest(GONE)
        return entry

    @staticmethod
    def _visible_to_members(entry: LibraryEntry, guild_id: int) -> bool:
        return entry.guild_id == guild_id and not entry.hidden

    async def tag_choices(self, guild_id: int, typed: str) -> list[str]:
        return await self._repository.tags(
            guild_id, normalise(typed.lstrip("#")), limit=CHOICES_LIMIT
        )

    async def like(self, member: Member, entry_id: int) -> Like:
        """Like the entry, or take the like back."""
        entry = await self.entry(member, entry_id)
        liked = await self._repository.toggle_like(entry.id, member.user_id, now=self._clock())
        if liked is None:
            raise InvalidRequest(GONE)
        return liked

    async def use(
        self,
        member: Member,
        target: DiscordTarget,
        entry_id: int,
        *,
        reply: Reply | None = None,
        prompt: str | None = None,
        negative_prompt: str | None = None,
    ) -> Submission:
        """Queue the entry's recipe for the clicker (Edit & use: with their texts), charged
        and checked as any /imagine; the entry's use count goes up once it is queued."""
        entry = await self.entry(member, entry_id)
        submission = await self._jobs.submit(
            request_of(entry.recipe, prompt=prompt, negative=negative_prompt),
            target,
            member,
            reply=reply,
            remix_of=entry.job_id,
            shared_from=SharedOrigin(entry.id, entry.title, entry.author_id),
        )
        await self._repository.count_use(entry.id)
        return submission

    async def report(self, member: Member, entry_id: int, reason: str | None) -> None:
        """Report an entry to the server's mod log (once per member and entry)."""
        entry = await self.entry(member, entry_id)
        text = " ".join((reason or "").split())[:MAX_REASON_LENGTH]
        first = await self._repository.report(entry.id, member.user_id, text, now=self._clock())
        if first and self._mod_log is not None:
            self._mod_log.entry_reported(member, entry, text)

    # ------------------------------------------------------------------- members' own data

    async def mine(self, member: Member) -> list[LibraryEntry]:
        return await self._repository.author_entries(member.guild_id, member.user_id)

    async def delete_own(self, member: Member, entry_id: int) -> LibraryEntry:
        entry = await self._repository.get(entry_id)
        if entry is None or (entry.guild_id, entry.author_id) != (member.guild_id, member.user_id):
            raise InvalidRequest("That is not one of your shared prompts. See /prompts mine.")
        return await self._delete(member.guild_id, entry.id, audit=None)

    async def forget(
        self, guild_id: int, user_id: int, *, actor_id: int | None = None
    ) -> ForgottenMember:
        """Remove every entry of the member here with its images, and their likes; an admin
        acting for a member who left is audited (``actor_id``)."""
        audit = None if actor_id is None else self._audit(actor_id, "library-forget", user_id)
        forgotten = await self._repository.forget_member(guild_id, user_id, audit=audit)
        for entry in forgotten.entries:
            await self._discard_files(entry)
        log.info(
            "guild %d: member %d forgotten (%d entries, %d likes)",
            guild_id,
            user_id,
            len(forgotten.entries),
            forgotten.likes,
        )
        return forgotten

    # ------------------------------------------------------------------------ moderation

    async def set_hidden(
        self, guild_id: int, actor_id: int, entry_id: int, hidden: bool
    ) -> LibraryEntry:
        action = "library-hide" if hidden else "library-show"
        changed = await self._repository.set_hidden(
            guild_id, entry_id, hidden, audit=self._audit(actor_id, action, entry_id=entry_id)
        )
        if changed is None:
            raise InvalidRequest(f"This server's library has no entry #{entry_id}.")
        return changed

    async def delete(self, guild_id: int, actor_id: int, entry_id: int) -> LibraryEntry:
        return await self._delete(
            guild_id, entry_id, audit=self._audit(actor_id, "library-delete", entry_id=entry_id)
        )

    async def _delete(
        self, guild_id: int, entry_id: int, *, audit: AuditFields | None
    ) -> LibraryEntry:
        deleted = await self._repository.delete(guild_id, entry_id, audit=audit)
        if deleted is None:
            raise InvalidRequest(f"This server's library has no entry #{entry_id}.")
        await self._discard_files(deleted)
        return deleted

    async def _discard_files(self, entry: LibraryEntry) -> None:
        """An entry's image, thumbnail and gallery-channel post, once its row is gone."""
        await self._files.remove(entry.image_name, entry.thumbnail_name)
        channel_id, message_id = entry.gallery_channel_id, entry.gallery_message_id
        if self._gallery is not None and channel_id is not None and message_id is not None:
            try:
                await self._gallery.delete_post(channel_id, message_id)
            except Exception:
                log.warning("entry %d: its gallery post could not be removed", entry.id)

    async def set_barred(self, guild_id: int, actor_id: int, user_id: int, barred: bool) -> bool:
        action = "library-bar" if barred else "library-unbar"
        return await self._repository.set_barred(
            guild_id, user_id, barred, audit=self._audit(actor_id, action, user_id)
        )

    async def reported(self, guild_id: int) -> list[ReportedEntry]:
        return await self._repository.reported(guild_id, limit=REPORTS_SHOWN)

    # -------------------------------------------------------------------------- settings

    async def settings(self, guild_id: int) -> LibrarySettings:
        return await self._repository.settings(guild_id)

    async def set_gallery_channel(
        self, guild_id: int, actor_id: int, channel_id: int | None
    ) -> None:
        await self._repository.set_gallery_channel(
            guild_id,
            channel_id,
            audit=self._audit(actor_id, "library-channel", channel_id=channel_id),
        )

    async def set_web_gallery(
        self, guild_id: int, actor_id: int, enabled: bool, *, guild_name: str
    ) -> None:
        """Show (or stop showing) the server's entries on the web gallery. Refused while the
        operator has not enabled the gallery (``[gallery] enabled``): an admin would believe
        the server's gallery is up while nothing serves it."""
        if enabled and not self._web_gallery_enabled:
            raise InvalidRequest(
                "The web gallery is switched off for this bot; its operator can turn it on "
                "([gallery] enabled in the bot's configuration)."
            )
        await self._repository.set_web_gallery(
            guild_id,
            enabled,
            guild_name=guild_name,
            audit=self._audit(actor_id, "library-web-gallery", enabled=enabled),
        )

    # ------------------------------------------------------------------------ web gallery

    async def web_settings(self, guild_id: int) -> LibrarySettings | None:
        """The server's settings if its web gallery is open (the bot's and the admins'
        switches both on), else None: the gallery then shows nothing of it."""
        if not self._web_gallery_enabled:
            return None
        settings = await self._repository.settings(guild_id)
        return settings if settings.web_gallery else None

    async def web_page(
        self, guild_id: int, where: EntryFilter, sort: Sort, *, offset: int, limit: int
    ) -> tuple[list[LibraryEntry], int]:
        """Visible entries of an open gallery (the caller checked ``web_settings``)."""
        if where.query is not None:
            where = EntryFilter(query=search_terms(where.query), tag=where.tag, tier=where.tier)
        return await self._repository.page(guild_id, where, sort, offset=offset, limit=limit)

    async def web_entry(self, guild_id: int, entry_id: int) -> LibraryEntry | None:
        entry = await self._repository.get(entry_id)
        if entry is None or not self._visible_to_members(entry, guild_id):
            return None
        return entry

    def _audit(
        self, actor_id: int, action: str, user_id: int | None = None, **details: object
    ) -> AuditFields:
        if user_id is not None:
            details["user_id"] = user_id
        return AuditFields(actor_id=actor_id, action=action, details=details, now=self._clock())


def _who(member: Member) -> tuple[int, int]:
    return member.user_id, member.guild_id


def _heading(sort: Sort, where: EntryFilter) -> str:
    """What a browse shows above its entries: its order and filters, as the member chose."""
    orders = {
        Sort.NEWEST: "Newest first",
        Sort.MOST_LIKED: "Most liked",
        Sort.MOST_USED: "Most used",
    }
    searched = " ".join(where.query.split())[:100] if where.query else None
    parts = [orders[sort] if searched is None else f"Best matches for “{searched}”"]
    if where.tag:
        parts.append(f"tag #{where.tag}")
    if where.tier:
        parts.append(f"{where.tier.value} tier")
    if where.author_id:
        parts.append(f"by <@{where.author_id}>")
    return " · ".join(parts)
