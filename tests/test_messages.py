"""Every message the bot builds fits Discord's limits, however long and markdown-heavy the text.

Discord refuses a message over any limit whole (400, code 50035), so an oversized reply or
result leaves a stored and charged job unannounced. The limits below are Discord's own
(developer docs: Message resource, "Embed Limits"; Create Message), written out here rather
than imported so the test does not trust the code it checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord
import pytest

from bot.core.delivery import Attachment, Posted, Result
from bot.core.domain import Job, JobState, Option, SafetyLevel, Tier
from bot.core.jobs import Submission
from bot.core.quotas import Allowance, GuildPolicy, PeriodUsage, QuotaStatus
from bot.core.routing import HealthReport, HealthState
from bot.core.storage.quotas import AuditEntry, CreditLimit, MemberUsage, UsageReport
from bot.messages import (
    error_embed,
    failure_embed,
    fit_all,
    outcome_embed,
    queued_embed,
    quote,
    request_embed,
)
from cogs.admin import audit_embed, policy_embed, providers_embed, usage_embed
from cogs.queue import queue_embed
from cogs.quota import quota_embed
from tests.factories import a_request, a_target

SPECIALS = "*_~|`\\"
# The longest prompt the config allows (max_prompt_length <= 4000), every character one that
# escaping doubles: 8,000 characters once escaped.
WORST_PROMPT = (SPECIALS * 700)[:4000]
LONG_TEXT = "The image service said no. " * 200  # 5,400 characters
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def a_job(**overrides: object) -> Job:
    """A job carrying the most text a job can: prompt, negative and rewritten prompt, error."""
    fields: dict[str, object] = {
        "id": 7,
        "state": JobState.SUCCEEDED,
        "request": a_request(
            WORST_PROMPT,
            negative_prompt=WORST_PROMPT[::-1],
            seed=42,
            image_count=4,
            chosen=frozenset(Option),
        ),
        "target": a_target(),
        "provider": "replicate",
        "provider_job_id": "p1",
        "callback_token": "token",
        "attempts": 1,
        "error": LONG_TEXT,
        "delivery_error": None,
        "image_paths": (Path("images/7-1.jpg"),),
        "created_at": NOW,
        "updated_at": NOW,
        "finished_at": NOW + timedelta(seconds=12),
        "credits": 2,
        "batch_index": 2,
        "batch_size": 4,
        "effective_prompt": WORST_PROMPT[1:] + "*",
        "not_applied": frozenset(Option),
    }
    fields.update(overrides)
    return Job(**fields)  # type: ignore[arg-type]


def limit_violations(embeds: Sequence[discord.Embed]) -> list[str]:
    """What in one message breaks a Discord limit; empty when Discord would accept it."""
    problems = [f"{len(embeds)} embeds > 10"] if len(embeds) > 10 else []
    total = 0
    for number, embed in enumerate(embeds, 1):
        data = embed.to_dict()
        fields = data.get("fields", [])
        texts = [
            ("title", data.get("title", ""), 256),
            ("description", data.get("description", ""), 4096),
            ("footer", data.get("footer", {}).get("text", ""), 2048),
            ("author", data.get("author", {}).get("name", ""), 256),
            *((f"field name {i}", f["name"], 256) for i, f in enumerate(fields, 1)),
            *((f"field value {i}", f["value"], 1024) for i, f in enumerate(fields, 1)),
        ]
        problems += [
            f"embed {number} {what} {len(text)} > {limit}"
            for what, text, limit in texts
            if len(text) > limit
        ]
        if len(fields) > 25:
            problems.append(f"embed {number} has {len(fields)} fields > 25")
        total += sum(len(text) for _, text, _ in texts)
    if total > 6000:
        problems.append(f"all embeds together {total} > 6000")
    return problems


def every_message() -> dict[str, list[discord.Embed]]:
    """Each message type, built from the worst input each can get."""
    job = a_job()
    long_error = "x" * 300
    policy = GuildPolicy(
        default=Allowance(10, 100),
        guild_monthly=1000,
        exempt_role_id=10**18,
        role_limits={10**18 + n: CreditLimit(5, 50) for n in range(300)},
        member_limits={10**18 + n: CreditLimit(5, 50) for n in range(300)},
        tier_roles={tier: frozenset(10**18 + n for n in range(100)) for tier in Tier},
        max_running=2,
        max_queued_per_member=5,
        max_queued_per_guild=50,
    )
    usage = UsageReport(
        top_members=[MemberUsage(10**18 + n, 10**6, 10**9) for n in range(10)],
        credits_by_tier=dict.fromkeys(Tier, 10**9),
        jobs=10**6,
        failed=10**5,
        refunded_credits=10**6,
        rows=[],
    )
    audit = [
        AuditEntry(10**18, "tier-roles", {"role_ids": list(range(10**18, 10**18 + 50))}, NOW)
        for _ in range(100)
    ]
    health = [
        HealthReport(
            f"provider-{n}", HealthState.OPEN, NOW.timestamp(), 50, 0.5, 2.0, SPECIALS * 500
        )
        for n in range(30)
    ]
    period = PeriodUsage(used=10**9, limit=10**9, resets_at=NOW)
    status = QuotaStatus(period, period, period, dict.fromkeys(Tier, 10**6), frozenset(Tier))
    return {
        "first reply": [queued_embed(job, 3, submission=Submission([job] * 4, job.not_applied))],
        "progress edit": [queued_embed(job, None)],
        "result": [
            request_embed(
                [
                    Result(job, (Attachment(Path("7-1.jpg"), 1),), ("7-2.jpg",), (long_error,))
                    for _ in range(4)
                ]
            )
        ],
        "done": [outcome_embed(job, Posted(1, "https://discord.com/channels/1/2/3"), [job] * 4)],
        "all failed": [outcome_embed(job, None, [job] * 4)],
        "failure": [failure_embed(job)],
        "error reply": [error_embed(long_error * 20)],
        "/queue": [queue_embed([(job, n or None) for n in range(8)])],
        "/quota": [quota_embed(status)],
        "admin show": [policy_embed(policy)],
        "admin usage": [usage_embed(usage, "month")],
        "admin audit": [audit_embed(audit)],
        "admin providers": [providers_embed(health)],
    }


def test_every_message_fits_discords_limits_for_worst_case_input() -> None:
    offenders = {
        name: problems
        for name, embeds in every_message().items()
        if (problems := limit_violations(embeds))
    }

    assert offenders == {}


def test_a_cut_quote_ends_on_a_whole_escape() -> None:
    """Cut anywhere, the text keeps every escape whole: a lone backslash would escape the
    ellipsis (or whatever follows), and a special without its backslash would be markdown."""
    whole_escapes = re.compile(r"(?:\\[*_~|`\\]|[^*_~|`\\])*…")

    for limit in range(1, 80):
        quoted = quote(WORST_PROMPT, limit)

        assert len(quoted) <= limit
        assert whole_escapes.fullmatch(quoted), (limit, quoted)


@pytest.mark.parametrize("prompt", ["a lighthouse at dusk", "a" * 4000], ids=["short", "4000"])
def test_a_prompt_that_fits_is_shown_whole(prompt: str) -> None:
    job = a_job(request=a_request(prompt), effective_prompt=None)

    assert request_embed([Result(job)]).description == prompt


def test_a_cut_prompt_in_the_reply_follows_the_status_sentence_and_ends_in_an_ellipsis() -> None:
    description = queued_embed(a_job(), 1).description or ""

    assert description.startswith(
        "Your image is next in line. It will be posted in this channel when it is ready.\n\n>>> \\"
    )
    assert description.endswith("…")


def test_a_result_over_the_total_shortens_the_prompt_and_keeps_the_settings() -> None:
    embed = request_embed([Result(a_job())])

    assert embed.footer.text == "Job #7 · 2 credits charged"
    assert len(embed) <= 6000
    assert (embed.description or "").endswith("…")


def options_shown(job: Job) -> str | None:
    return {field.name: field.value for field in request_embed([Result(job)]).fields}["Options"]


def test_a_result_names_the_options_applied_with_readable_labels() -> None:
    assert options_shown(a_job(not_applied=frozenset())) == (
        "Safety: Balanced · Format: JPG · Seed: 42"
    )


def test_a_seed_one_of_the_requests_providers_dropped_is_not_claimed_for_any() -> None:
    seeded, dropped = a_job(not_applied=frozenset()), a_job(not_applied=frozenset({Option.SEED}))

    embed = request_embed([Result(seeded), Result(dropped)])

    fields = {field.name: field.value for field in embed.fields}
    assert fields["Options"] == "Safety: Balanced · Format: JPG"
    assert "seed" in (fields["Note"] or "")


def test_a_seed_the_provider_could_not_apply_is_not_claimed() -> None:
    assert options_shown(a_job(not_applied=frozenset({Option.SEED}))) == (
        "Safety: Balanced · Format: JPG"
    )


def test_a_result_says_how_long_it_waited_apart_from_how_long_it_took() -> None:
    created = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    job = a_job(
        created_at=created,
        submitted_at=created + timedelta(seconds=6.1),
        finished_at=created + timedelta(seconds=9.1),
    )

    fields = {field.name: field.value for field in request_embed([Result(job)]).fields}

    assert fields["Time"] == "waited 6.1 s · generated in 3.0 s"


def test_the_end_of_a_members_status_links_to_the_result() -> None:
    posted = Posted(3, "https://discord.com/channels/1/2/3")

    embed = outcome_embed(a_job(), posted, [])

    assert embed.title == "Done"
    assert embed.description == "[Jump to your result](https://discord.com/channels/1/2/3)"


def refund_notes(embed: discord.Embed) -> list[str]:
    return [field.value or "" for field in embed.fields if field.name == "Refund"]


def test_a_long_error_keeps_the_note_that_credits_came_back() -> None:
    embed = failure_embed(a_job())

    assert len(embed.description or "") <= 4096
    assert refund_notes(embed) == ["2 credits given back to you."]


def test_every_failure_of_a_private_response_keeps_its_refund_note_whole() -> None:
    """Ten failures in one message: the 6,000-character total shortens their texts."""
    failures = [failure_embed(a_job(id=n, credits=n)) for n in range(1, 11)]

    fitted = fit_all(failures)

    assert limit_violations(fitted) == []
    for credits, embed in enumerate(fitted, 1):
        note = f"{credits} credit{'' if credits == 1 else 's'} given back to you."
        # Wherever the note is, it is there whole.
        assert note in (embed.description or "") or refund_notes(embed) == [note]


def test_a_failure_that_cost_nothing_mentions_no_refund() -> None:
    assert refund_notes(failure_embed(a_job(credits=0))) == []


def test_several_embeds_of_one_message_share_one_total() -> None:
    embeds = fit_all([discord.Embed(description="x" * 4000) for _ in range(3)])

    assert limit_violations(embeds) == []
    assert all(embed.description for embed in embeds)


def test_more_embeds_than_one_message_holds_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 10 embeds"):
        fit_all([discord.Embed(description="x") for _ in range(11)])


def test_the_first_reply_says_when_the_safety_floor_made_the_image_stricter() -> None:
    job = a_job()
    floored = Submission([job], frozenset(), safety_floor=SafetyLevel.BLOCK_LOW_AND_ABOVE)

    fields = {field.name: field.value for field in queued_embed(job, 1, submission=floored).fields}

    assert fields["Safety floor"] == (
        "This server's safety floor is Strict: your image is made at Strict."
    )
