"""/imagine-admin: quotas, limits, grants, usage and the audit trail, for server managers.

Discord hides the group from members without Manage Server (default_permissions), but a
server can change that in its integration settings, so every command checks the invoking
member's permissions again.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from bot.core.domain import Tier
from bot.core.errors import InvalidRequest
from bot.core.quotas import MAX_CREDITS_SETTING, MAX_GRANT, GuildPolicy, QuotaService
from bot.core.routing import RECENT_CALLS, HealthReport, HealthState, Router
from bot.core.storage.quotas import AuditEntry, CreditLimit, UsageReport
from bot.messages import NO_MENTIONS, TIER_LABELS, fit, quote
from cogs.common import admin_guild_and_actor

Credits = Range[int, 0, MAX_CREDITS_SETTING]
TIER_CHOICES = [Choice(name=TIER_LABELS[tier], value=tier.value) for tier in Tier]
PERIOD_CHOICES = [Choice(name="Today", value="day"), Choice(name="This month", value="month")]
# Enough of a provider's last error to recognise it, so many providers still fit one message.
LAST_ERROR_CHARS = 200


def _member(user: discord.Member | discord.User) -> discord.Member:
    if not isinstance(user, discord.Member):
        raise InvalidRequest(f"{user.mention} is not a member of this server.")
    return user


def _limit_text(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def policy_embed(policy: GuildPolicy) -> discord.Embed:
    embed = discord.Embed(title="Image credits on this server", colour=discord.Colour.blurple())
    embed.add_field(
        name="Per member (default)",
        value=f"{_limit_text(policy.default.daily)} a day · "
        f"{_limit_text(policy.default.monthly)} a month",
        inline=False,
    )
    embed.add_field(
        name="Server budget", value=f"{_limit_text(policy.guild_monthly)} a month", inline=False
    )
    if policy.exempt_role_id is not None:
        embed.add_field(name="Exempt role", value=f"<@&{policy.exempt_role_id}>", inline=False)
    for title, limits, mention in (
        ("Role limits", policy.role_limits, "<@&{}>"),
        ("Member limits", policy.member_limits, "<@{}>"),
    ):
        if limits:
            embed.add_field(
                name=title,
                value="\n".join(
                    f"{mention.format(subject)}: {_limit_text(limit.daily or None)} a day · "
                    f"{_limit_text(limit.monthly or None)} a month"
                    for subject, limit in sorted(limits.items())
                ),
                inline=False,
            )
    for tier, roles in policy.tier_roles.items():
        embed.add_field(
            name=f"{TIER_LABELS[tier]} is open to",
            value=" ".join(f"<@&{role}>" for role in sorted(roles)),
            inline=False,
        )
    embed.add_field(
        name="Queue",
        value=f"{policy.max_running} running · {policy.max_queued_per_member} waiting per "
        f"member · {policy.max_queued_per_guild} waiting in all",
        inline=False,
    )
    return fit(embed)


def usage_embed(report: UsageReport, period: str) -> discord.Embed:
    embed = discord.Embed(
        title=f"Usage {'this month' if period == 'month' else 'today'}",
        colour=discord.Colour.blurple(),
    )
    embed.add_field(
        name="Top members",
        value="\n".join(
            f"<@{row.user_id}>: {row.credits} credit(s), {row.jobs} job(s)"
            for row in report.top_members
        )
        or "nobody yet",
        inline=False,
    )
    embed.add_field(
        name="Credits by tier",
        value="\n".join(
            f"{TIER_LABELS[tier]}: {credits}" for tier, credits in report.credits_by_tier.items()
        ),
        inline=False,
    )
    embed.add_field(
        name="Safety blocks",
        value="\n".join(
            f"<@{user_id}>: {count} job(s)"
            for user_id, count in sorted(report.safety_blocked.items(), key=lambda i: -i[1])[:10]
        )
        or "none",
        inline=False,
    )
    embed.add_field(
        name="Jobs",
        value=f"{report.jobs} in all · {report.failed} failed · "
        f"{report.refunded_credits} credit(s) refunded",
        inline=False,
    )
    return fit(embed)


def usage_csv(report: UsageReport) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["job_id", "user_id", "tier", "state", "credits", "charge", "created_at", "safety_blocked"]
    )
    for job_id, user_id, tier, state, credits, charge, created_at in report.rows:
        moment = datetime.fromtimestamp(created_at, UTC).isoformat(timespec="seconds")
        blocked = int(job_id in report.safety_blocked_job_ids)
        writer.writerow([job_id, user_id, tier, state, credits, charge, moment, blocked])
    return buffer.getvalue().encode()


def audit_embed(entries: list[AuditEntry]) -> discord.Embed:
    embed = discord.Embed(title="Recent admin changes", colour=discord.Colour.blurple())
    lines = [
        f"{discord.utils.format_dt(entry.created_at, 'f')} <@{entry.actor_id}> "
        f"**{entry.action}** "
        # Escaped: a detail may be admin text (a blocklist entry), shown, never interpreted.
        + ", ".join(f"{key}={quote(str(value), 200)}" for key, value in entry.details.items())
        for entry in entries
    ]
    embed.description = "\n".join(lines) or "No changes yet."
    return fit(embed)


def providers_embed(reports: list[HealthReport]) -> discord.Embed:
    embed = discord.Embed(title="Image services", colour=discord.Colour.blurple())
    for report in reports:
        lines = [report.state.value.capitalize()]
        if report.state is not HealthState.HEALTHY:
            moment = datetime.fromtimestamp(report.available_at, UTC)
            lines[0] += f", back {discord.utils.format_dt(moment, 'R')}"
        if report.error_rate is None:
            lines.append("No calls since the bot started.")
        else:
            lines.append(
                f"Errors: {report.error_rate:.0%} of the last {report.recent_calls} calls"
                f" (at most {RECENT_CALLS} are kept)"
            )
        if report.average_latency is not None:
            lines.append(f"Average answer: {report.average_latency:.1f} s")
        if report.last_error:
            lines.append(f"Last error: {quote(report.last_error, LAST_ERROR_CHARS)}")
        embed.add_field(name=report.provider, value="\n".join(lines), inline=False)
    return fit(embed)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(commands.GroupCog, group_name="imagine-admin"):
    """Server settings for image credits and the queue."""

    def __init__(
        self, quotas: QuotaService, router: Router, *subgroups: app_commands.Group
    ) -> None:
        """``subgroups`` join the command as ``/imagine-admin <group> …`` (the blocklist)."""
        self._quotas = quotas
        self._router = router
        super().__init__()
        group = self.app_command
        assert group is not None  # a GroupCog always has its group
        for subgroup in subgroups:
            group.add_command(subgroup)

    async def _done(
        self, interaction: discord.Interaction[discord.Client], what: str, guild_id: int
    ) -> None:
        policy = await self._quotas.policy(guild_id)
        await interaction.response.send_message(
            what, embed=policy_embed(policy), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="show", description="Show this server's credit and queue settings")
    async def show(self, interaction: discord.Interaction[discord.Client]) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        await self._done(interaction, "Current settings:", guild_id)

    @app_commands.command(name="default-limit", description="Credits each member may use")
    @app_commands.describe(
        daily="Credits per day (0 = unlimited; leave out for the bot's default)",
        monthly="Credits per month (0 = unlimited; leave out for the bot's default)",
    )
    async def default_limit(
        self,
        interaction: discord.Interaction[discord.Client],
        daily: Credits | None = None,
        monthly: Credits | None = None,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        await self._quotas.set_default_limits(guild_id, actor, daily=daily, monthly=monthly)
        await self._done(interaction, "Default limits updated.", guild_id)

    @app_commands.command(name="role-limit", description="Credits for members with a role")
    @app_commands.describe(
        role="The role",
        daily="Credits per day (0 = unlimited)",
        monthly="Credits per month (0 = unlimited)",
        remove="Remove this role's limit instead",
    )
    async def role_limit(
        self,
        interaction: discord.Interaction[discord.Client],
        role: discord.Role,
        daily: Credits = 0,
        monthly: Credits = 0,
        remove: bool = False,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        limit = None if remove else CreditLimit(daily, monthly)
        await self._quotas.set_role_limit(guild_id, actor, role.id, limit)
        await self._done(interaction, f"Limit for {role.mention} updated.", guild_id)

    @app_commands.command(name="member-limit", description="Credits for one member")
    @app_commands.describe(
        member="The member",
        daily="Credits per day (0 = unlimited)",
        monthly="Credits per month (0 = unlimited)",
        remove="Remove this member's own limit instead",
    )
    async def member_limit(
        self,
        interaction: discord.Interaction[discord.Client],
        member: discord.Member | discord.User,
        daily: Credits = 0,
        monthly: Credits = 0,
        remove: bool = False,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        target = _member(member)
        limit = None if remove else CreditLimit(daily, monthly)
        await self._quotas.set_member_limit(guild_id, actor, target.id, limit)
        await self._done(interaction, f"Limit for {target.mention} updated.", guild_id)

    @app_commands.command(name="budget", description="Credits the whole server may use a month")
    @app_commands.describe(monthly="Credits per month (0 = unlimited; leave out for the default)")
    async def budget(
        self, interaction: discord.Interaction[discord.Client], monthly: Credits | None = None
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        await self._quotas.set_budget(guild_id, actor, monthly=monthly)
        await self._done(interaction, "Server budget updated.", guild_id)

    @app_commands.command(name="exempt-role", description="A role without member limits")
    @app_commands.describe(role="The role (leave out to remove the exemption)")
    async def exempt_role(
        self, interaction: discord.Interaction[discord.Client], role: discord.Role | None = None
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        await self._quotas.set_exempt_role(guild_id, actor, role.id if role else None)
        await self._done(interaction, "Exempt role updated.", guild_id)

    @app_commands.command(name="tier-roles", description="Open a tier only to some roles")
    @app_commands.describe(
        tier="The tier",
        role="A role that may use it (leave all out to open the tier to everyone)",
        role_2="Another role",
        role_3="Another role",
    )
    @app_commands.choices(tier=TIER_CHOICES)
    async def tier_roles(
        self,
        interaction: discord.Interaction[discord.Client],
        tier: str,
        role: discord.Role | None = None,
        role_2: discord.Role | None = None,
        role_3: discord.Role | None = None,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        roles = frozenset(r.id for r in (role, role_2, role_3) if r is not None)
        await self._quotas.set_tier_roles(guild_id, actor, Tier(tier), roles)
        await self._done(interaction, f"{TIER_LABELS[Tier(tier)]} tier access updated.", guild_id)

    @app_commands.command(name="queue-limits", description="Limit this server's queue")
    @app_commands.describe(
        running="Jobs generating at once (leave out for the bot's default)",
        queued_per_member="Jobs one member may have waiting",
        queued="Jobs waiting in all",
    )
    async def queue_limits(
        self,
        interaction: discord.Interaction[discord.Client],
        running: Range[int, 1, 100] | None = None,
        queued_per_member: Range[int, 1, 1000] | None = None,
        queued: Range[int, 1, 100_000] | None = None,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        await self._quotas.set_queue_limits(
            guild_id,
            actor,
            max_running=running,
            max_queued_per_member=queued_per_member,
            max_queued_per_guild=queued,
        )
        await self._done(interaction, "Queue limits updated.", guild_id)

    @app_commands.command(name="grant", description="Give a member one-off extra credits")
    @app_commands.describe(member="The member", credits="Extra credits for today and this month")
    async def grant(
        self,
        interaction: discord.Interaction[discord.Client],
        member: discord.Member | discord.User,
        credits: Range[int, 1, MAX_GRANT],
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        target = _member(member)
        await self._quotas.grant(guild_id, actor, target.id, credits)
        await interaction.response.send_message(
            f"Granted {credits} credit(s) to {target.mention}.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="reset", description="Forgive what a member has used so far")
    async def reset(
        self,
        interaction: discord.Interaction[discord.Client],
        member: discord.Member | discord.User,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        target = _member(member)
        await self._quotas.reset_member(guild_id, actor, target.id)
        await interaction.response.send_message(
            f"{target.mention} starts afresh today and this month.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="usage", description="Who used what, with a CSV export")
    @app_commands.choices(period=PERIOD_CHOICES)
    async def usage(
        self, interaction: discord.Interaction[discord.Client], period: str = "month"
    ) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        report = await self._quotas.usage_report(guild_id, monthly=period == "month")
        await interaction.response.send_message(
            embed=usage_embed(report, period),
            file=discord.File(io.BytesIO(usage_csv(report)), filename=f"usage-{period}.csv"),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="audit", description="Recent changes to these settings")
    async def audit(self, interaction: discord.Interaction[discord.Client]) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        entries = await self._quotas.audit_trail(guild_id)
        await interaction.response.send_message(
            embed=audit_embed(entries), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(name="providers", description="Health of the image services")
    async def providers(self, interaction: discord.Interaction[discord.Client]) -> None:
        admin_guild_and_actor(interaction)
        await interaction.response.send_message(
            embed=providers_embed(self._router.health()),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
