"""Admin changes are multi-statement transactions; they must never swallow a job's write."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from bot.core.storage.quotas import AuditFields, CreditLimit, QuotaRepository
from tests.conftest import stored_job
from tests.factories import GUILD_ID, USER_ID


async def test_a_failed_admin_change_does_not_take_a_concurrent_job_with_it(
    tmp_path: Path,
) -> None:
    # Two connections, as the composition root opens them: jobs on one, admin changes on the
    # other, so a job's INSERT cannot land inside an admin transaction that rolls back.
    jobs_db = await open_database(tmp_path / "bot.sqlite3")
    admin_db = await open_database(tmp_path / "bot.sqlite3")
    try:
        jobs, quotas = JobRepository(jobs_db), QuotaRepository(admin_db)
        refused_by_check = quotas.set_limit(
            GUILD_ID,
            "member",
            USER_ID,
            CreditLimit(daily=-1, monthly=10),
            audit=AuditFields(actor_id=1, action="member-limit", details={}, now=1.0),
        )

        failure, job = await asyncio.gather(
            refused_by_check, stored_job(jobs), return_exceptions=True
        )

        assert isinstance(failure, sqlite3.IntegrityError)
        assert not isinstance(job, BaseException)
        assert await jobs.get(job.id) is not None
    finally:
        await jobs_db.close()
        await admin_db.close()
