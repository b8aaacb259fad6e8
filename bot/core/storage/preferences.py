"""Members' own defaults for /imagine, one row per guild and member."""

from __future__ import annotations

import aiosqlite

from bot.core.domain import AspectRatio, OutputFormat, SafetyLevel, Tier
from bot.core.storage.protocols import OptionDefaults


class MemberDefaultsRepository:
    """The SQLite MemberDefaultsStore."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def member_defaults(self, guild_id: int, user_id: int) -> OptionDefaults:
        rows = await self._db.execute_fetchall(
            "SELECT tier, aspect_ratio, safety, output_format FROM member_defaults "
            "WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        for tier, aspect_ratio, safety, output_format in rows:
            return OptionDefaults(
                tier=None if tier is None else Tier(tier),
                aspect_ratio=None if aspect_ratio is None else AspectRatio(aspect_ratio),
                safety=None if safety is None else SafetyLevel(safety),
                output_format=None if output_format is None else OutputFormat(output_format),
            )
        return OptionDefaults()

    async def save_member_defaults(
        self, guild_id: int, user_id: int, defaults: OptionDefaults, *, now: float
    ) -> None:
        """One statement (the connection autocommits), so it needs no transaction of its own;
        a member with nothing set keeps no row."""
        if defaults == OptionDefaults():
            await self._db.execute(
                "DELETE FROM member_defaults WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            )
        else:
            await self._db.execute(
                "INSERT INTO member_defaults (guild_id, user_id, tier, aspect_ratio, safety, "
                "output_format, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET tier = excluded.tier, "
                "aspect_ratio = excluded.aspect_ratio, safety = excluded.safety, "
                "output_format = excluded.output_format, updated_at = excluded.updated_at",
                (
                    guild_id,
                    user_id,
                    None if defaults.tier is None else defaults.tier.value,
                    None if defaults.aspect_ratio is None else defaults.aspect_ratio.value,
                    None if defaults.safety is None else defaults.safety.value,
                    None if defaults.output_format is None else defaults.output_format.value,
                    now,
                ),
            )
