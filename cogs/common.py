"""Translating a Discord interaction into the core's plain types."""

from __future__ import annotations

import discord

from bot.core.domain import DiscordTarget, Member
from bot.core.errors import InvalidRequest, NotAllowed


def target_of(interaction: discord.Interaction[discord.Client]) -> DiscordTarget:
    if interaction.channel_id is None:
        raise InvalidRequest("I cannot tell which channel to post in; please try again.")
    # Discord sends a thread's parent with the interaction's channel, so a thread under an
    # allowed channel is allowed too.
    channel = interaction.channel
    parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
    return DiscordTarget(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        application_id=interaction.application_id,
        interaction_token=interaction.token,
        interaction_expires_at=interaction.expires_at,
        attachment_size_limit=interaction.filesize_limit,
        parent_channel_id=parent_id,
    )


def member_of(interaction: discord.Interaction[discord.Client]) -> Member:
    """The invoking member with their role ids (resolved against the cached guild roles)."""
    if interaction.guild_id is None:
        raise InvalidRequest("This only works in a server.")
    user = interaction.user
    roles = frozenset(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
    return Member(guild_id=interaction.guild_id, user_id=user.id, role_ids=frozenset(roles))


def admin_guild_and_actor(interaction: discord.Interaction[discord.Client]) -> tuple[int, int]:
    """The guild and the admin acting in it; every admin command checks Manage Server on each
    use (Discord's default_permissions only hides commands, and admins can change that)."""
    if interaction.guild_id is None:
        raise InvalidRequest("This only works in a server.")
    if not interaction.permissions.manage_guild:
        raise NotAllowed()
    return interaction.guild_id, interaction.user.id
