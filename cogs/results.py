"""The buttons under a result (bot/buttons.py), answered: each click becomes a core call.

A click may come from any member who sees the result. Reroll, another tier and Edit make a
new request of the clicker's own (their target and member, their credits, their tier roles)
through exactly ``JobService.submit``, as /imagine does, naming the result's job as the one
it remixes. Every click loads the job its button names and checks it belongs to this channel
(and, once known, to this message), so a custom_id grants nothing by itself.
"""

from __future__ import annotations

from typing import Any, cast

import discord
from discord.ext import commands

from bot.buttons import (
    NEGATIVE_INPUT,
    PROMPT_INPUT,
    RESULTS_COG,
    UNKNOWN_IMAGE,
    Action,
    Click,
    ResultButton,
    at_tier,
    details_embed,
    details_files,
    edit_modal,
    edited,
    parse_click,
    rerolled,
    submitted_texts,
)
from bot.core.domain import GenerationRequest, Job
from bot.core.errors import InvalidRequest, NotAllowed
from bot.core.jobs import JobService, Submission
from bot.library_components import share_modal
from bot.messages import NO_MENTIONS, queued_embed
from bot.tree import reply_with_error
from cogs.common import member_of, target_of

SHARE_REFUSED = "Only the member who asked for this image can share it."
DELETE_REFUSED = (
    "Only the member who asked for this image, or someone with the Manage Messages "
    "permission, can delete it."
)


class ResultsCog(commands.Cog, name=RESULTS_COG):
    """Registers the result buttons and answers them; ``ResultButton`` finds this cog on the
    bot by name (bot/buttons.py says why it is not a class bound to the service)."""

    def __init__(self, bot: commands.Bot, jobs: JobService) -> None:
        self._bot = bot
        self._jobs = jobs

    async def cog_load(self) -> None:
        self._bot.add_dynamic_items(ResultButton)

    async def cog_unload(self) -> None:
        self._bot.remove_dynamic_items(ResultButton)

    async def on_result_click(
        self, interaction: discord.Interaction[discord.Client], click: Click | None
    ) -> None:
        try:
            if click is not None and click.action in (Action.EDIT, Action.SHARE):
                # The modal must be the first response: the job is read first (one local
                # SQLite read, well within Discord's 3 s) to prefill it.
                job = await self._source(interaction, click)
                if click.action is Action.SHARE and interaction.user.id != job.target.user_id:
                    raise NotAllowed(SHARE_REFUSED)
                # The share form is answered by the library cog (cogs/library.py).
                modal = edit_modal(job) if click.action is Action.EDIT else share_modal(job)
                await interaction.response.send_modal(modal)
                # Forgotten by discord.py at once: on_interaction answers its submit by
                # custom_id, after a restart too (see edit_modal).
                modal.stop()
                return
            # Everything else answers privately, and first, before any work.
            await interaction.response.defer(ephemeral=True, thinking=True)
            job = await self._source(interaction, click)
            assert click is not None  # _source refuses a click that names no job
            if click.action is Action.REROLL:
                await self._queue(interaction, rerolled(job), job)
            elif click.action is Action.TIER:
                assert click.tier is not None
                await self._queue(interaction, at_tier(job, click.tier), job)
            elif click.action is Action.DETAILS:
                await self._show_details(interaction, job)
            elif click.action is Action.DELETE:
                await self._delete(interaction, job)
        except Exception as exc:  # the same error table as commands
            await reply_with_error(interaction, exc)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[discord.Client]) -> None:
        """The Edit modal's submit, matched by its custom_id (see ``edit_modal``)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data = cast(dict[str, Any], interaction.data or {})
        click = parse_click(str(data.get("custom_id", "")))
        if click is None or click.action is not Action.EDIT:
            return
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            job = await self._source(interaction, click)
            texts = submitted_texts(data)
            request = edited(
                job,
                prompt=texts.get(PROMPT_INPUT, ""),
                negative_prompt=texts.get(NEGATIVE_INPUT) or None,
            )
            await self._queue(interaction, request, job)
        except Exception as exc:
            await reply_with_error(interaction, exc)

    async def _source(
        self, interaction: discord.Interaction[discord.Client], click: Click | None
    ) -> Job:
        """The job a click names, if the click came from that job's own posted result; the
        same refusal otherwise, so a forged id can neither probe which jobs exist nor reach a
        job that was never posted (a failure, a blocked prompt, a private result)."""
        if click is None:
            raise InvalidRequest(UNKNOWN_IMAGE)
        job = await self._jobs.job(click.job_id)
        where = (job.target.guild_id, job.target.channel_id)
        message = interaction.message
        if (
            where != (interaction.guild_id, interaction.channel_id)
            or message is None
            or job.result_message_id != message.id
        ):
            raise InvalidRequest(UNKNOWN_IMAGE)
        return job

    async def _queue(
        self,
        interaction: discord.Interaction[discord.Client],
        request: GenerationRequest,
        source: Job,
    ) -> None:
        """Queue the clicker's new request as /imagine does, in the deferred reply."""

        async def show_queued(submission: Submission, position: int | None) -> None:
            await interaction.edit_original_response(
                embed=queued_embed(submission.jobs[0], position, submission=submission),
                allowed_mentions=NO_MENTIONS,
            )

        await self._jobs.submit(
            request,
            target_of(interaction),
            member_of(interaction),
            reply=show_queued,
            remix_of=source.id,
        )

    async def _show_details(
        self, interaction: discord.Interaction[discord.Client], job: Job
    ) -> None:
        embed = details_embed(job)
        await interaction.followup.send(
            embed=embed,
            files=details_files(job, embed),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    async def _delete(self, interaction: discord.Interaction[discord.Client], job: Job) -> None:
        """The requester's to remove, or a moderator's (Manage Messages where it was clicked)."""
        allowed = interaction.user.id == job.target.user_id
        if not (allowed or interaction.permissions.manage_messages):
            raise NotAllowed(DELETE_REFUSED)
        message = interaction.message
        if message is None:
            raise InvalidRequest(UNKNOWN_IMAGE)
        if message.flags.ephemeral:
            # Discord keeps those out of reach of the channel's API; the member has Dismiss.
            raise InvalidRequest("Only you can see this result: use Dismiss message under it.")
        try:
            await message.delete()
        except discord.NotFound:
            pass  # deleted meanwhile: what the member asked for
        except discord.Forbidden as exc:
            raise InvalidRequest(
                "I am not allowed to delete messages in this channel any more; a server admin "
                "can remove it."
            ) from exc
        await interaction.followup.send(
            f"Deleted the result of job #{job.id}.", ephemeral=True, allowed_mentions=NO_MENTIONS
        )
