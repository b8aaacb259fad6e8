"""The command tree and its one error table: every failure of a command becomes one reply."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot.core.errors import BotError, QuotaExceeded
from bot.messages import NO_MENTIONS, error_embed

log = logging.getLogger(__name__)


def user_message_for(error: BaseException) -> str | None:
    """The reply for an expected failure, or None for a bug."""
    cause = error
    if isinstance(error, app_commands.CommandInvokeError):
        cause = error.original
    if isinstance(cause, QuotaExceeded) and cause.resets_at is not None:
        # Discord renders the timestamp in each member's own time zone.
        moment = discord.utils.format_dt(cause.resets_at, "R")
        return f"{cause.user_message} More credits {moment}."
    if isinstance(cause, BotError):
        return cause.user_message
    if isinstance(cause, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(cause, app_commands.MissingPermissions):
        needed = ", ".join(p.replace("_", " ").title() for p in cause.missing_permissions)
        return f"You need the {needed} permission to use this command."
    if isinstance(cause, app_commands.BotMissingPermissions):
        needed = ", ".join(p.replace("_", " ").title() for p in cause.missing_permissions)
        return f"I need the {needed} permission in this channel."
    if isinstance(cause, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {cause.retry_after:.0f} s."
    if isinstance(cause, app_commands.TransformerError):
        return f"{cause.value!r} is not a valid value for this option."
    if isinstance(cause, app_commands.CheckFailure):
        return "You cannot use this command here."
    return None


async def reply_with_error(
    interaction: discord.Interaction[discord.Client], error: BaseException
) -> None:
    """The one place a failure becomes a reply: commands and buttons alike."""
    message = user_message_for(error)
    if message is None:
        reference = secrets.token_hex(4)
        command = interaction.command.qualified_name if interaction.command else "component"
        log.error("unhandled error in %s (ref %s)", command, reference, exc_info=error)
        message = (
            f"Something went wrong on our side (reference `{reference}`). "
            "The bot's operator can look it up in the log."
        )
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                embed=error_embed(message), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
        else:
            await interaction.response.send_message(
                embed=error_embed(message), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
    except discord.HTTPException:
        log.warning("could not send an error reply for interaction %s", interaction.id)


class ImagineCommandTree(app_commands.CommandTree[discord.Client]):
    async def on_error(
        self, interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
    ) -> None:
        await reply_with_error(interaction, error)
