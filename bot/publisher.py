"""The Discord side of the core's Publisher port."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import cast

import discord

from bot.core.delivery import Attachment, Result
from bot.core.domain import Job
from bot.core.errors import ChannelUnavailable, DeliveryFailed
from bot.messages import failure_embed, fit_all, queued_embed, requester_only, result_embed

log = logging.getLogger(__name__)

FALLBACK_NOTE = "I could not post in that channel, so here is your result privately."
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


class DiscordPublisher:
    """Posts results in the job's channel, else shows them in the member's private response.

    The channel is addressed by id (a partial messageable) so delivery works after a restart
    with an empty cache. When the channel is gone or closed to the bot, the interaction
    webhook still reaches the member for 15 minutes, without any channel permission.
    """

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def post_in_channel(self, result: Result) -> None:
        job = result.job
        target = job.target
        channel = self._client.get_partial_messageable(target.channel_id, guild_id=target.guild_id)
        try:
            await channel.send(
                content=f"<@{target.user_id}>",
                embed=_embed(result),
                files=_files(result.attachments),
                allowed_mentions=requester_only(target.user_id),
                # Discord drops a second message with the same enforced nonce, so a restart
                # between posting and recording the post does not ping the member twice.
                nonce=f"imagine-job-{job.id}",
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            raise ChannelUnavailable(detail=f"channel {target.channel_id} refused: {exc}") from exc

    async def show_privately(self, results: Sequence[Result]) -> None:
        """Edit the member's original ephemeral response: an edit shows the same thing however
        often it is repeated, so a restart between it and its record never sends twice."""
        job = results[-1].job
        try:
            await self._interaction_webhook(job).edit_message(
                ORIGINAL_RESPONSE,
                content=FALLBACK_NOTE,
                # A request has at most 4 jobs; their embeds share one 6,000-character total.
                embeds=fit_all([_embed(result) for result in results]),
                attachments=_files(a for result in results for a in result.attachments),
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

    def _interaction_webhook(self, job: Job) -> discord.Webhook:
        """The webhook of the job's interaction, reachable for 15 minutes after the command."""
        webhook = discord.Webhook.partial(
            job.target.application_id, job.target.interaction_token, client=self._client
        )
        # partial() makes an incoming webhook; only application webhooks may send ephemerals.
        webhook.type = discord.WebhookType.application
        return webhook


def _embed(result: Result) -> discord.Embed:
    if result.job.error is not None:
        return failure_embed(result.job)
    first = result.attachments[0].filename if result.attachments else None
    return result_embed(result.job, first, result.oversized)


def _files(attachments: Iterable[Attachment]) -> list[discord.File]:
    """Files opened from their paths: discord.py hands them to aiohttp, which streams each in
    64 KiB reads (in a worker thread) as it uploads, so no image is read whole into memory."""
    return [discord.File(a.path, filename=a.filename) for a in attachments]
