"""/prompts: the community prompt library in Discord (issue 12), and its buttons and forms.

Commands, buttons (bot/library_components.py) and forms become LibraryService calls; the
service checks everything (whose job, which server, hidden entries, bars, the blocklist),
and every refusal goes through the one error table (bot/tree.py). Previous, Next and Like
answer by updating the browse message in place (Discord's UPDATE_MESSAGE, the first and only
response), which costs a few local reads; everything else that works first defers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.buttons import NEGATIVE_INPUT, PROMPT_INPUT, submitted_texts
from bot.core.domain import Tier
from bot.core.errors import InvalidRequest
from bot.core.jobs import Reply, Submission
from bot.core.library import CHOICES_LIMIT, BrowsePage, LibraryService
from bot.core.storage.library_protocol import EntryFilter, LibraryEntry, Sort
from bot.library_components import (
    LIBRARY_COG,
    PREFIX,
    REASON_INPUT,
    TAGS_INPUT,
    TITLE_INPUT,
    UNKNOWN_BUTTON,
    LibraryAction,
    LibraryButton,
    LibraryClick,
    browse_view,
    delete_buttons_view,
    edit_and_use_modal,
    forget_view,
    parse_library_click,
    report_modal,
    share_modal,
)
from bot.library_messages import (
    browse_embed,
    choice_name,
    deleted_text,
    forget_question_embed,
    forgotten_embed,
    image_file,
    mine_embed,
    shared_embed,
    typed_in,
)
from bot.messages import NO_MENTIONS, TIER_LABELS, queued_embed
from bot.tree import reply_with_error
from cogs.common import member_of, target_of

SORT_CHOICES = [
    Choice(name="Newest first", value=Sort.NEWEST.value),
    Choice(name="Most liked", value=Sort.MOST_LIKED.value),
    Choice(name="Most used", value=Sort.MOST_USED.value),
]
TIER_CHOICES = [Choice(name=TIER_LABELS[tier], value=tier.value) for tier in Tier]
# Discord's largest integer option (a JSON number stays exact up to 2**53).
MAX_OPTION_INT = 2**53
NOT_SHAREABLE = (
    "That is not one of your recent finished images on this server: pick one from the list "
    "(see /jobs)."
)
FORGET_SOMEONE_ELSE = "This button is for the member who asked to be forgotten."
REPORTED = "Thanks, the moderators have been told."


def _page_message(
    library: LibraryService, page: BrowsePage
) -> tuple[discord.Embed, discord.File, discord.ui.View]:
    """A browse page: its embed, the library's own copy of the image, its buttons."""
    entry = page.entry
    file = image_file(entry, library.files.path(entry.image_name))
    return browse_embed(page), file, browse_view(page)


def _show_queued(interaction: discord.Interaction[discord.Client]) -> Reply:
    """The queued message in the deferred reply, as /imagine and the result buttons show it
    (each builds this small callback around its own interaction)."""

    async def show_queued(submission: Submission, position: int | None) -> None:
        await interaction.edit_original_response(
            embed=queued_embed(submission.jobs[0], position, submission=submission),
            allowed_mentions=NO_MENTIONS,
        )

    return show_queued


@app_commands.guild_only()
class LibraryCog(
    commands.GroupCog,
    name=LIBRARY_COG,
    group_name="prompts",
    group_description="The server's library of shared prompts",
):
    """Registers the library's buttons and answers them, its forms, and /prompts."""

    def __init__(self, bot: commands.Bot, library: LibraryService) -> None:
        super().__init__()
        self._bot = bot
        self._library = library

    async def cog_load(self) -> None:
        self._bot.add_dynamic_items(LibraryButton)

    async def cog_unload(self) -> None:
        self._bot.remove_dynamic_items(LibraryButton)

    # ---------------------------------------------------------------------- commands

    @app_commands.command(name="share", description="Share one of your images and its prompt")
    @app_commands.describe(job="Which of your recent images (start typing its prompt)")
    async def share(
        self,
        interaction: discord.Interaction[discord.Client],
        job: app_commands.Range[int, 1, MAX_OPTION_INT],
    ) -> None:
        # One local read (the member's recent jobs) to prefill the form, which must be the
        # first response.
        shareable = await self._library.shareable(member_of(interaction))
        chosen = next((candidate for candidate in shareable if candidate.id == job), None)
        if chosen is None:
            raise InvalidRequest(NOT_SHAREABLE)
        await self._send_modal(interaction, share_modal(chosen))

    @share.autocomplete("job")
    async def _share_choices(
        self, interaction: discord.Interaction[discord.Client], current: str
    ) -> list[Choice[int]]:
        jobs = await self._library.shareable(member_of(interaction))
        return [
            Choice(name=choice_name(f"#{job.id} · {job.request.prompt}"), value=job.id)
            for job in jobs
            if typed_in(current, str(job.id), job.request.prompt)
        ][:CHOICES_LIMIT]

    @app_commands.command(name="browse", description="Browse the prompts members shared here")
    @app_commands.describe(
        sort="Order (default: newest first)",
        tag="Only entries with this tag",
        tier="Only entries made at this tier",
        author="Only entries this member shared",
    )
    @app_commands.choices(sort=SORT_CHOICES, tier=TIER_CHOICES)
    async def browse(
        self,
        interaction: discord.Interaction[discord.Client],
        sort: str = Sort.NEWEST.value,
        tag: str | None = None,
        tier: str | None = None,
        author: discord.User | None = None,
    ) -> None:
        where = EntryFilter(
            tag=tag,
            tier=None if tier is None else Tier(tier),
            author_id=None if author is None else author.id,
        )
        await self._start_browse(interaction, Sort(sort), where)

    @app_commands.command(name="search", description="Search the prompts members shared here")
    @app_commands.describe(
        query="Words of the title, tags or prompt",
        tag="Only entries with this tag",
        tier="Only entries made at this tier",
    )
    @app_commands.choices(tier=TIER_CHOICES)
    async def search(
        self,
        interaction: discord.Interaction[discord.Client],
        query: app_commands.Range[str, 1, 200],
        tag: str | None = None,
        tier: str | None = None,
    ) -> None:
        where = EntryFilter(query=query, tag=tag, tier=None if tier is None else Tier(tier))
        await self._start_browse(interaction, Sort.NEWEST, where)

    @browse.autocomplete("tag")
    @search.autocomplete("tag")
    async def _tag_choices(
        self, interaction: discord.Interaction[discord.Client], current: str
    ) -> list[Choice[str]]:
        if interaction.guild_id is None:
            return []
        tags = await self._library.tag_choices(interaction.guild_id, current)
        return [Choice(name=choice_name(f"#{tag}"), value=tag) for tag in tags]

    @app_commands.command(name="mine", description="The prompts you shared, to delete them")
    async def mine(self, interaction: discord.Interaction[discord.Client]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        entries = await self._library.mine(member_of(interaction))
        await interaction.followup.send(
            embed=mine_embed(entries),
            view=delete_buttons_view(entries),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="delete", description="Delete one of the prompts you shared")
    @app_commands.describe(entry="Which of your shared prompts")
    async def delete(
        self,
        interaction: discord.Interaction[discord.Client],
        entry: app_commands.Range[int, 1, MAX_OPTION_INT],
    ) -> None:
        await self._delete_own(interaction, entry)

    @delete.autocomplete("entry")
    async def _own_entry_choices(
        self, interaction: discord.Interaction[discord.Client], current: str
    ) -> list[Choice[int]]:
        entries = await self._library.mine(member_of(interaction))
        return [
            Choice(name=choice_name(f"#{entry.id} · {entry.title}"), value=entry.id)
            for entry in entries
            if typed_in(current, str(entry.id), entry.title)
        ][:CHOICES_LIMIT]

    @app_commands.command(
        name="forget-me", description="Remove all your shared prompts and likes on this server"
    )
    async def forget_me(self, interaction: discord.Interaction[discord.Client]) -> None:
        await interaction.response.send_message(
            embed=forget_question_embed(),
            view=forget_view(interaction.user.id),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    # --------------------------------------------------------------------- buttons

    async def on_library_click(
        self, interaction: discord.Interaction[discord.Client], click: LibraryClick | None
    ) -> None:
        try:
            if click is None or click.action is LibraryAction.SHARE:
                raise InvalidRequest(UNKNOWN_BUTTON)  # share is a form's id, never a button's
            action = click.action
            if action in (LibraryAction.PREVIOUS, LibraryAction.NEXT):
                step = -1 if action is LibraryAction.PREVIOUS else 1
                page = await self._library.page(
                    member_of(interaction), click.browse_id, click.position + step, step
                )
                await self._update_page(interaction, page)
            elif action is LibraryAction.LIKE:
                await self._like(interaction, click)
            elif action is LibraryAction.EDIT:
                entry = await self._library.entry(member_of(interaction), click.entry_id)
                await self._send_modal(interaction, edit_and_use_modal(entry))
            elif action is LibraryAction.REPORT:
                entry = await self._library.entry(member_of(interaction), click.entry_id)
                await self._send_modal(interaction, report_modal(entry))
            elif action is LibraryAction.USE:
                await interaction.response.defer(ephemeral=True, thinking=True)
                await self._use(interaction, click.entry_id)
            elif action is LibraryAction.DELETE:
                await self._delete_own(interaction, click.entry_id)
            elif action is LibraryAction.FORGET:
                await self._forget(interaction, click)
        except Exception as exc:  # the same error table as commands
            await reply_with_error(interaction, exc)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[discord.Client]) -> None:
        """The library's forms, answered by custom_id (see bot/library_components.py)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data = cast(dict[str, Any], interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(f"{PREFIX}:"):
            return
        click = parse_library_click(custom_id)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            texts = submitted_texts(data)
            if click is None:
                raise InvalidRequest(UNKNOWN_BUTTON)
            if click.action is LibraryAction.SHARE:
                await self._share(interaction, click.numbers[0], texts)
            elif click.action is LibraryAction.EDIT:
                await self._use(
                    interaction,
                    click.entry_id,
                    prompt=texts.get(PROMPT_INPUT, ""),
                    negative_prompt=texts.get(NEGATIVE_INPUT) or None,
                )
            elif click.action is LibraryAction.REPORT:
                await self._library.report(
                    member_of(interaction), click.entry_id, texts.get(REASON_INPUT)
                )
                await self._say(interaction, REPORTED)
            else:
                raise InvalidRequest(UNKNOWN_BUTTON)
        except Exception as exc:
            await reply_with_error(interaction, exc)

    # --------------------------------------------------------------------- the work

    async def _start_browse(
        self, interaction: discord.Interaction[discord.Client], sort: Sort, where: EntryFilter
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        page = await self._library.browse(member_of(interaction), sort, where)
        embed, file, view = _page_message(self._library, page)
        await interaction.followup.send(
            embed=embed, file=file, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def _update_page(
        self, interaction: discord.Interaction[discord.Client], page: BrowsePage
    ) -> None:
        """Show another page in the browse message itself, its image replacing the last."""
        embed, file, view = _page_message(self._library, page)
        await interaction.response.edit_message(
            embed=embed, attachments=[file], view=view, allowed_mentions=NO_MENTIONS
        )

    async def _like(
        self, interaction: discord.Interaction[discord.Client], click: LibraryClick
    ) -> None:
        """Toggle the member's like and show the page again with the count the toggle left
        (the browse is read first, so an expired one likes nothing)."""
        member = member_of(interaction)
        page = await self._library.page(member, click.browse_id, click.position)
        liked = await self._library.like(member, click.entry_id)
        if page.entry.id == click.entry_id:
            entry = dataclasses.replace(page.entry, likes=liked.likes)
            page = dataclasses.replace(page, entry=entry)
        await self._update_page(interaction, page)

    async def _use(
        self,
        interaction: discord.Interaction[discord.Client],
        entry_id: int,
        *,
        prompt: str | None = None,
        negative_prompt: str | None = None,
    ) -> None:
        """Queue the entry for the clicker, charged to them, in the deferred reply."""
        await self._library.use(
            member_of(interaction),
            target_of(interaction),
            entry_id,
            reply=_show_queued(interaction),
            prompt=prompt,
            negative_prompt=negative_prompt,
        )

    async def _share(
        self,
        interaction: discord.Interaction[discord.Client],
        job_id: int,
        texts: dict[str, str],
    ) -> None:
        entry = await self._library.share(
            member_of(interaction),
            job_id,
            author_name=interaction.user.display_name,
            title=texts.get(TITLE_INPUT, ""),
            tags=texts.get(TAGS_INPUT) or None,
        )
        await self._show_entry(interaction, entry)

    async def _show_entry(
        self, interaction: discord.Interaction[discord.Client], entry: LibraryEntry
    ) -> None:
        await interaction.followup.send(
            embed=shared_embed(entry),
            file=image_file(entry, self._library.files.path(entry.image_name)),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    async def _delete_own(
        self, interaction: discord.Interaction[discord.Client], entry_id: int
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        deleted = await self._library.delete_own(member_of(interaction), entry_id)
        await self._say(interaction, deleted_text(deleted))

    async def _forget(
        self, interaction: discord.Interaction[discord.Client], click: LibraryClick
    ) -> None:
        if click.numbers[0] != interaction.user.id or interaction.guild_id is None:
            raise InvalidRequest(FORGET_SOMEONE_ELSE)
        await interaction.response.defer(ephemeral=True, thinking=True)
        forgotten = await self._library.forget(interaction.guild_id, interaction.user.id)
        await interaction.followup.send(
            embed=forgotten_embed(forgotten), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @staticmethod
    async def _send_modal(
        interaction: discord.Interaction[discord.Client], modal: discord.ui.Modal
    ) -> None:
        await interaction.response.send_modal(modal)
        # Forgotten by discord.py at once: on_interaction answers its submit by custom_id.
        modal.stop()

    @staticmethod
    async def _say(interaction: discord.Interaction[discord.Client], text: str) -> None:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
