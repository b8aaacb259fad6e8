"""/settings (a member's own defaults) and /imagine-admin settings (the server's defaults and
safety floor).

Both take plain options rather than a panel of select menus: one command sets several
defaults at once, works the same on every client, and is what /imagine already looks like.
/settings with no options only shows; an option given changes that default, "Clear" forgets
it. The admin group is attached under /imagine-admin by the composition root, and like every
admin command checks Manage Server again on each use; each change is audited.
"""

from __future__ import annotations

import enum
from typing import TypeVar

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.core.domain import AspectRatio, OutputFormat, SafetyLevel, Tier
from bot.core.library import LibraryService
from bot.core.preferences import PreferenceService, effective_defaults, is_more_lenient
from bot.core.quotas import GuildPolicy, QuotaService
from bot.core.storage.protocols import OptionDefaults
from bot.messages import NO_MENTIONS, SAFETY_LABELS, TIER_LABELS, fit
from cogs.admin import policy_embed
from cogs.common import admin_guild_and_actor, member_of
from cogs.imagine import ASPECT_CHOICES, FORMAT_CHOICES, SAFETY_CHOICES, TIER_CHOICES

E = TypeVar("E", bound=enum.StrEnum)

CLEAR = "clear"
NO_FLOOR = "none"
CLEAR_CHOICE = Choice(name="Clear: use the server's or the bot's default", value=CLEAR)
FLOOR_CHOICES = [
    Choice(
        name="Strict: members may not go below Strict", value=SafetyLevel.BLOCK_LOW_AND_ABOVE.value
    ),
    Choice(
        name="Balanced: members may not go below Balanced",
        value=SafetyLevel.BLOCK_MEDIUM_AND_ABOVE.value,
    ),
    Choice(
        name="Lenient: any level (the same as no floor)", value=SafetyLevel.BLOCK_ONLY_HIGH.value
    ),
    Choice(name="None: no floor", value=NO_FLOOR),
]
LABELS = {
    "tier": "Tier",
    "aspect_ratio": "Aspect ratio",
    "safety": "Safety",
    "output_format": "Output format",
}


def _label(value: enum.StrEnum) -> str:
    if isinstance(value, Tier):
        return TIER_LABELS[value]
    if isinstance(value, SafetyLevel):
        return SAFETY_LABELS[value]
    if isinstance(value, OutputFormat):
        return value.value.upper()
    return value.value


def settings_embed(policy: GuildPolicy) -> discord.Embed:
    """The quota embed of /imagine-admin show, with this server's content settings first."""
    embed = policy_embed(policy)
    embed.title = "Settings on this server"
    fields = [(field.name, field.value, field.inline) for field in embed.fields]
    embed.clear_fields()
    floor = policy.safety_floor
    embed.add_field(
        name="Safety floor",
        value="none" if floor is None else f"{SAFETY_LABELS[floor]} (nothing more lenient)",
        inline=False,
    )
    server = policy.defaults
    embed.add_field(
        name="Server defaults",
        value=f"Tier: {'not set' if server.tier is None else _label(server.tier)} · "
        f"Aspect ratio: {'not set' if server.aspect_ratio is None else server.aspect_ratio}",
        inline=False,
    )
    allowed = policy.allowed_channels
    embed.add_field(
        name="Allowed channels",
        value=" ".join(f"<#{channel}>" for channel in sorted(allowed)) or "every channel",
        inline=False,
    )
    mod_log = policy.mod_log_channel_id
    embed.add_field(
        name="Mod log", value="off" if mod_log is None else f"<#{mod_log}>", inline=False
    )
    embed.add_field(
        name="Results",
        value="private: to the requester only" if policy.private_results else "public",
        inline=False,
    )
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    return fit(embed)


def member_settings_embed(
    mine: OptionDefaults, server: OptionDefaults, floor: SafetyLevel | None
) -> discord.Embed:
    embed = discord.Embed(
        title="Your defaults on this server",
        description="Used for the /imagine options you leave out; an option you give wins.",
        colour=discord.Colour.blurple(),
    )
    for name, (value, source) in effective_defaults(mine, server).items():
        text = f"{_label(value)} ({source.value})"
        if (
            name == "safety"
            and floor is not None
            and isinstance(value, SafetyLevel)
            and is_more_lenient(value, than=floor)
        ):
            text += f"; this server's floor makes it {SAFETY_LABELS[floor]}"
        embed.add_field(name=LABELS[name], value=text, inline=False)
    return fit(embed)


class ServerSettingsGroup(app_commands.Group):
    """The server's defaults and safety floor, under /imagine-admin settings."""

    def __init__(
        self, quotas: QuotaService, library: LibraryService, *, public_url: str | None = None
    ) -> None:
        """``public_url``: the listener's public address, where the web gallery is served."""
        super().__init__(name="settings", description="Server defaults and the safety floor")
        self._quotas = quotas
        self._library = library
        self._public_url = public_url

    async def _done(
        self, interaction: discord.Interaction[discord.Client], what: str, guild_id: int
    ) -> None:
        policy = await self._quotas.policy(guild_id)
        await interaction.response.send_message(
            what, embed=settings_embed(policy), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="safety-floor", description="The most lenient level members may use")
    @app_commands.describe(level="Members asking for a more lenient level get this one")
    @app_commands.choices(level=FLOOR_CHOICES)
    async def safety_floor(
        self, interaction: discord.Interaction[discord.Client], level: str
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        floor = None if level == NO_FLOOR else SafetyLevel(level)
        await self._quotas.set_safety_floor(guild_id, actor, floor)
        await self._done(interaction, "Safety floor updated.", guild_id)

    @app_commands.command(name="defaults", description="Defaults for options members leave out")
    @app_commands.describe(
        tier="The server's default tier (leave out to clear it)",
        aspect_ratio="The server's default shape (leave out to clear it)",
    )
    @app_commands.choices(tier=TIER_CHOICES, aspect_ratio=ASPECT_CHOICES)
    async def defaults(
        self,
        interaction: discord.Interaction[discord.Client],
        tier: str | None = None,
        aspect_ratio: str | None = None,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        await self._quotas.set_server_defaults(
            guild_id,
            actor,
            tier=None if tier is None else Tier(tier),
            aspect_ratio=None if aspect_ratio is None else AspectRatio(aspect_ratio),
        )
        await self._done(interaction, "Server defaults updated.", guild_id)

    @app_commands.command(
        name="mod-log", description="Where blocked prompts and safety blocks are reported"
    )
    @app_commands.describe(channel="The mod-log channel (leave out to turn the mod log off)")
    async def mod_log(
        self,
        interaction: discord.Interaction[discord.Client],
        channel: app_commands.AppCommandChannel | None = None,
    ) -> None:
        # One command with an optional channel, like /imagine-admin exempt-role: leaving the
        # option out is how every other setting here is cleared.
        guild_id, actor = admin_guild_and_actor(interaction)
        await self._quotas.set_mod_log(guild_id, actor, None if channel is None else channel.id)
        what = "Mod log turned off." if channel is None else "Mod log channel set."
        await self._done(interaction, what, guild_id)

    @app_commands.command(name="results", description="Post results in the channel or privately")
    @app_commands.describe(visibility="public: in the channel; private: to the requester only")
    @app_commands.choices(
        visibility=[
            app_commands.Choice(name="Public: in the channel", value="public"),
            app_commands.Choice(name="Private: to the requester only", value="private"),
        ]
    )
    async def results(
        self, interaction: discord.Interaction[discord.Client], visibility: str
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        private = visibility == "private"
        await self._quotas.set_private_results(guild_id, actor, private)
        what = "Results now go to their requester only." if private else "Results are public."
        await self._done(interaction, what, guild_id)

    @app_commands.command(
        name="gallery", description="Show this server's shared prompts on the web"
    )
    @app_commands.describe(state="on: a public read-only web page of the library; off: none")
    @app_commands.choices(
        state=[
            app_commands.Choice(name="On: a public web gallery", value="on"),
            app_commands.Choice(name="Off", value="off"),
        ]
    )
    async def gallery(self, interaction: discord.Interaction[discord.Client], state: str) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        enabled = state == "on"
        name = interaction.guild.name if interaction.guild is not None else ""
        await self._library.set_web_gallery(guild_id, actor, enabled, guild_name=name)
        if not enabled:
            what = "The web gallery no longer shows this server's shared prompts."
        elif self._public_url:
            what = (
                "This server's shared prompts are now on the web, for anyone with the link: "
                f"{self._public_url.rstrip('/')}/gallery/{guild_id}"
            )
        else:
            what = (
                "The web gallery is on for this server; the bot has no public address set "
                "([webhook] public_url), so it is reachable only where its listener is."
            )
        await interaction.response.send_message(what, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="show", description="Show every setting of this server")
    async def show(self, interaction: discord.Interaction[discord.Client]) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        await self._done(interaction, "Current settings:", guild_id)


def _changed(
    current: OptionDefaults,
    *,
    tier: str | None,
    aspect_ratio: str | None,
    safety: str | None,
    output_format: str | None,
) -> OptionDefaults:
    """``current`` with the options given: CLEAR forgets one, None (left out) keeps it."""

    def pick(given: str | None, kind: type[E], kept: E | None) -> E | None:
        if given is None:
            return kept
        return None if given == CLEAR else kind(given)

    return OptionDefaults(
        tier=pick(tier, Tier, current.tier),
        aspect_ratio=pick(aspect_ratio, AspectRatio, current.aspect_ratio),
        safety=pick(safety, SafetyLevel, current.safety),
        output_format=pick(output_format, OutputFormat, current.output_format),
    )


class SettingsCog(commands.Cog):
    def __init__(self, preferences: PreferenceService) -> None:
        self._preferences = preferences

    @app_commands.command(name="settings", description="Your own defaults for /imagine")
    @app_commands.guild_only()
    @app_commands.describe(
        tier="Your default tier",
        aspect_ratio="Your default shape",
        safety="Your default safety level (the server's floor still applies)",
        output_format="Your default file type",
        reset="Forget all your defaults",
    )
    @app_commands.choices(
        tier=[*TIER_CHOICES, CLEAR_CHOICE],
        aspect_ratio=[*ASPECT_CHOICES, CLEAR_CHOICE],
        safety=[*SAFETY_CHOICES, CLEAR_CHOICE],
        output_format=[*FORMAT_CHOICES, CLEAR_CHOICE],
    )
    async def settings(
        self,
        interaction: discord.Interaction[discord.Client],
        tier: str | None = None,
        aspect_ratio: str | None = None,
        safety: str | None = None,
        output_format: str | None = None,
        reset: bool = False,
    ) -> None:
        member = member_of(interaction)
        mine = await self._preferences.member_defaults(member)
        if reset:
            mine = OptionDefaults()
        changed = _changed(
            mine, tier=tier, aspect_ratio=aspect_ratio, safety=safety, output_format=output_format
        )
        what = "Your defaults:"
        if reset or changed != mine:
            await self._preferences.save(member, changed)
            what = "Your defaults are saved."
        server, floor = await self._preferences.server_defaults(member.guild_id)
        await interaction.response.send_message(
            what,
            embed=member_settings_embed(changed, server, floor),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
