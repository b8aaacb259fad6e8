"""The Discord side of the core's Publisher port."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import discord

from bot.core.delivery import Attachment, ModLogReport, Posted, Result
from bot.core.domain import Job
from bot.core.errors import ChannelUnavailable, DeliveryFailed
from bot.messages import (
    FIELD_VALUE_LIMIT,
    failure_embed,
    fit,
    fit_all,
    outcome_embed,
    queued_embed,
    quote,
    request_embed,
    requester_only,
)

log = logging.getLogger(__name__)

# The buttons under a posted result (bot.buttons.result_view), given by the composition root.
ResultView = Callable[[Job], discord.ui.View]

FALLBACK_NOTE = "I could not post in that channel, so here is your result privately."
PRIVATE_NOTE = "Here is your result; this server shows results only to whoever asked."
DIRECT_NOTE = "Here is what became of your image request."
# Discord accepts "@original" wherever an interaction webhook takes a message id.
ORIGINAL_RESPONSE = cast(int, "@original")
# 50027 "Invalid Webhook Token": the 15-minute interaction token has expired (401). Retrying
# cannot help, so it ends that route at once.
INVALID_WEBHOOK_TOKEN = 50027


def token_refused(error: discord.HTTPException) -> bool:
    """The interaction webhook will never work again: expired, unknown or forbidden."""
    return (
        error.status in (401, 403, 404)
        or error.code == INVALID_WEBHOOK_TOKEN
        or isinstance(error, discord.NotFound | discord.Forbidden)
    )


def refused_for_good(error: discord.HTTPException) -> bool:
    """A 4xx other than 429: the channel is gone (404), closed to the bot (403) or cannot take
    the message (400, an archived thread); retrying cannot change that. A 429 or a 5xx can."""
    return 400 <= error.status < 500 and error.status != 429


class DiscordPublisher:
    """Posts results in the job's channel, else shows them in the member's private response,
    else in a direct message; failures go only to the member.

    The channel is addressed by id (a partial messageable) so delivery works after a restart
    with an empty cache. When the channel is gone or closed to the bot, the interaction
    webhook still reaches the member for 15 minutes, without any channel permission.
    """

    def __init__(self, client: discord.Client, *, result_view: ResultView | None = None) -> None:
        self._client = client
        self._result_view = result_view

    async def post_in_channel(self, results: Sequence[Result]) -> Posted:
        """One message for the request: every image attached (Discord shows several as one
        gallery), one embed, one mention of the member who asked."""
        job = results[0].job
        target = job.target
        channel = self._client.get_partial_messageable(target.channel_id, guild_id=target.guild_id)
        extra: dict[str, Any] = {}
        if self._result_view is not None:
            extra["view"] = self._result_view(job)
        try:
            message = await channel.send(
                content=f"<@{target.user_id}>",
                embed=request_embed(results),
                files=_files(a for result in results for a in result.attachments),
                allowed_mentions=requester_only(target.user_id),
                # Discord drops a second message with the same enforced nonce, so a restart
                # between posting and recording the post does not ping the member twice.
                nonce=f"imagine-job-{job.id}",
                **extra,
            )
        except discord.HTTPException as exc:
            # 404 (channel gone), 403 (no permission) and any other refusal that a retry
            # cannot change (400 50083, an archived thread): the member's private routes are
            # left. A 429 or a 5xx is worth retrying.
            if refused_for_good(exc):
                raise ChannelUnavailable(
                    detail=f"channel {target.channel_id} refused: {exc}"
                ) from exc
            raise
        return Posted(message_id=message.id, jump_url=message.jump_url)

    async def show_privately(self, results: Sequence[Result], *, by_setting: bool = False) -> None:
        """Edit the member's original ephemeral response: an edit shows the same thing however
        often it is repeated, so a restart between it and its record never sends twice."""
        job = results[0].job
        try:
            await self._interaction_webhook(job).edit_message(
                ORIGINAL_RESPONSE,
                content=PRIVATE_NOTE if by_setting else FALLBACK_NOTE,
                embeds=_private_embeds(results),
                attachments=_files(a for result in results for a in result.attachments),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            if token_refused(exc):
                raise DeliveryFailed(detail=f"interaction webhook refused: {exc}") from exc
            raise

    async def send_direct(self, results: Sequence[Result]) -> None:
        """A direct message to the member: the route left once their 15-minute interaction
        token has expired. 50007 (cannot send messages to this user: DMs closed, no shared
        server) and a user Discord does not know end it."""
        job = results[0].job
        try:
            channel = await self._client.create_dm(discord.Object(id=job.target.user_id))
            await channel.send(
                content=DIRECT_NOTE,
                embeds=_private_embeds(results),
                files=_files(a for result in results for a in result.attachments),
                allowed_mentions=discord.AllowedMentions.none(),
                nonce=f"imagine-dm-{job.id}",
            )
        except (discord.Forbidden, discord.NotFound) as exc:
            raise DeliveryFailed(detail=f"direct message refused: {exc}") from exc

    async def show_outcome(self, job: Job, posted: Posted | None, failed: Sequence[Job]) -> None:
        try:
            await self._interaction_webhook(job).edit_message(
                ORIGINAL_RESPONSE,
                content=None,
                embed=outcome_embed(job, posted, failed),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException as exc:
            if token_refused(exc):
                raise DeliveryFailed(detail=f"interaction webhook refused: {exc}") from exc
            raise

    async def publish_progress(self, job: Job, position: int | None) -> None:
        """Edit the ephemeral queued reply, while the interaction token still works."""
        if job.target.interaction_expires_at <= datetime.now(UTC):
            return
        try:
            await self._interaction_webhook(job).edit_message(
                ORIGINAL_RESPONSE, embed=queued_embed(job, position)
            )
        except discord.HTTPException as exc:
            if not token_refused(exc):
                raise
            log.info("job %s: progress not shown, the interaction token is gone", job.id)

    async def report_to_mod_log(self, channel_id: int, report: ModLogReport) -> None:
        """One embed in the mod-log channel. The member is named by a mention, which shows
        who it was without pinging them (no mentions allowed); the prompt is escaped, clipped
        and behind a spoiler, as it may be what the server does not want read."""
        channel = self._client.get_partial_messageable(channel_id)
        try:
            await channel.send(
                embed=mod_log_embed(report), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            if refused_for_good(exc):
                raise ChannelUnavailable(
                    detail=f"mod-log channel {channel_id} refused: {exc}"
                ) from exc
            raise

    def _interaction_webhook(self, job: Job) -> discord.Webhook:
        """The webhook of the job's interaction, reachable for 15 minutes after the command."""
        webhook = discord.Webhook.partial(
            job.target.application_id, job.target.interaction_token, client=self._client
        )
        # partial() makes an incoming webhook; only application webhooks may send ephemerals.
        webhook.type = discord.WebhookType.application
        return webhook


# Room for the spoiler bars around the prompt within a field's 1,024 characters.
SPOILER_PROMPT_LIMIT = 1_000


def mod_log_embed(report: ModLogReport) -> discord.Embed:
    embed = discord.Embed(title=report.title, colour=discord.Colour.orange(), timestamp=report.at)
    embed.add_field(name="Member", value=f"<@{report.user_id}>", inline=True)
    embed.add_field(name="When", value=discord.utils.format_dt(report.at), inline=True)
    for name, value in report.details:
        embed.add_field(name=name, value=value, inline=False)
    for name, text in report.quoted:
        embed.add_field(name=name, value=quote(text, FIELD_VALUE_LIMIT), inline=False)
    embed.add_field(
        name="Prompt", value=f"||{quote(report.prompt, SPOILER_PROMPT_LIMIT)}||", inline=False
    )
    return fit(embed)


def _private_embeds(results: Sequence[Result]) -> list[discord.Embed]:
    """The request's images (one embed) and each failure (one embed each, at most 4 jobs a
    request), within one message's limits."""
    made = [result for result in results if result.job.error is None]
    failed = [result.job for result in results if result.job.error is not None]
    embeds = [request_embed(made)] if made else []
    return fit_all([*embeds, *(failure_embed(job) for job in failed)])


def _files(attachments: Iterable[Attachment]) -> list[discord.File]:
    """Files opened from their paths: discord.py hands them to aiohttp, which streams each in
    64 KiB reads (in a worker thread) as it uploads, so no image is read whole into memory."""
    return [discord.File(a.path, filename=a.filename) for a in attachments]
