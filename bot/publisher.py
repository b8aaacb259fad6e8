"""The Discord side of the core's Publisher port."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import discord

from bot.core.delivery import Attachment
from bot.core.domain import Job
from bot.core.errors import DeliveryFailed
from bot.messages import failure_embed, queued_embed, requester_only, result_embed

log = logging.getLogger(__name__)

FALLBACK_NOTE = "I could not post in that channel, so here is your result privately."


class DiscordPublisher:
    """Posts results in the job's channel; falls back to the interaction webhook.

    The channel is addressed by id (a partial messageable) so delivery works after a restart
    with an empty cache. When the channel is gone or closed to the bot, the interaction
    webhook still reaches the member for 15 minutes, without any channel permission.
    """

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def publish_images(
        self, job: Job, attachments: Sequence[Attachment], oversized: Sequence[str]
    ) -> None:
        first = attachments[0].filename if attachments else None
        await self._send(job, embed=result_embed(job, first, oversized), files=attachments)

    async def publish_failure(self, job: Job) -> None:
        await self._send(job, embed=failure_embed(job), files=())

    async def publish_progress(self, job: Job, position: int | None) -> None:
        """Edit the ephemeral queued reply, while the interaction token still works."""
        target = job.target
        if target.interaction_expires_at <= datetime.now(UTC):
            return
        # Discord accepts "@original" wherever an interaction webhook takes a message id.
        original = cast(int, "@original")
        await self._interaction_webhook(job).edit_message(
            original, embed=queued_embed(job, position)
        )

    def _interaction_webhook(self, job: Job) -> discord.Webhook:
        """The webhook of the job's interaction, reachable for 15 minutes after the command."""
        webhook = discord.Webhook.partial(
            job.target.application_id, job.target.interaction_token, client=self._client
        )
        # partial() makes an incoming webhook; only application webhooks may send ephemerals.
        webhook.type = discord.WebhookType.application
        return webhook

    async def _send(self, job: Job, *, embed: discord.Embed, files: Sequence[Attachment]) -> None:
        target = job.target
        channel = self._client.get_partial_messageable(target.channel_id, guild_id=target.guild_id)
        try:
            await channel.send(
                content=f"<@{target.user_id}>",
                embed=embed,
                files=_files(files),
                allowed_mentions=requester_only(target.user_id),
                # Discord drops a second message with the same enforced nonce, so a restart
                # between posting and recording the post does not ping the member twice.
                nonce=f"imagine-job-{job.id}",
            )
            return
        except (discord.NotFound, discord.Forbidden) as exc:
            log.warning("job %s: cannot post in channel %s: %s", job.id, target.channel_id, exc)
            channel_problem = exc
        if target.interaction_expires_at <= datetime.now(UTC):
            raise DeliveryFailed(detail=f"channel refused ({channel_problem}); token expired")
        try:
            await self._interaction_webhook(job).send(
                content=FALLBACK_NOTE,
                embed=embed,
                files=_files(files),
                ephemeral=True,
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            raise DeliveryFailed(detail=f"channel and interaction webhook refused: {exc}") from exc


def _files(attachments: Sequence[Attachment]) -> list[discord.File]:
    return [discord.File(io.BytesIO(a.data), filename=a.filename) for a in attachments]
