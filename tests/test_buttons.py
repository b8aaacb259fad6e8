"""The result buttons' custom_ids, layout and the requests they make, without Discord.

Discord's limits are written out here rather than imported, so the tests do not trust the code
they check: a custom_id of at most 100 characters, 5 buttons a row, a modal title of 45.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.buttons import (
    TEMPLATE,
    Action,
    Click,
    ResultButton,
    at_tier,
    details_embed,
    details_files,
    edit_modal,
    edited,
    parse_click,
    rerolled,
    result_view,
    submitted_texts,
)
from bot.core.domain import MAX_JOB_ID, Job, JobState, Tier
from cogs.queue import CANCEL_TEMPLATE
from tests.factories import a_request, a_target

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
# Every character one that escaping doubles, at the longest prompt the config allows.
WORST_PROMPT = ("*_~|`\\" * 700)[:4000]


def a_job(**overrides: object) -> Job:
    fields: dict[str, object] = {
        "id": 7,
        "state": JobState.DELIVERED,
        "request": a_request(),
        "target": a_target(),
        "provider": "replicate",
        "provider_job_id": "p1",
        "callback_token": "token",
        "attempts": 1,
        "error": None,
        "delivery_error": None,
        "image_paths": (Path("images/7-1.jpg"),),
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(overrides)
    return Job(**fields)  # type: ignore[arg-type]


def every_click(job_id: int) -> list[Click]:
    clicks = [Click(action, job_id) for action in Action if action is not Action.TIER]
    return clicks + [Click(Action.TIER, job_id, tier) for tier in Tier]


def labels(view: discord.ui.View) -> list[list[str]]:
    rows: dict[int, list[str]] = {}
    for item in view.children:
        assert isinstance(item, ResultButton)
        assert item.row is not None
        rows.setdefault(item.row, []).append(str(item.item.label))
    return [rows[row] for row in sorted(rows)]


def test_the_longest_custom_ids_fit_discords_100_characters() -> None:
    longest = max(len(click.custom_id) for click in every_click(MAX_JOB_ID))

    assert longest <= 100


def test_every_custom_id_reads_back_as_the_click_it_names() -> None:
    for click in every_click(MAX_JOB_ID):
        assert parse_click(click.custom_id) == click


def test_the_template_matches_every_custom_id_the_bot_makes() -> None:
    for click in every_click(1):
        assert re.fullmatch(TEMPLATE, click.custom_id)


def test_the_template_leaves_the_queues_cancel_buttons_to_them() -> None:
    assert re.fullmatch(TEMPLATE, "imagine:cancel:1") is None
    assert re.fullmatch(CANCEL_TEMPLATE, Click(Action.DELETE, 1).custom_id) is None


@pytest.mark.parametrize(
    "custom_id",
    [
        "imagine:reroll:0",
        "imagine:reroll:-1",
        "imagine:reroll:\u00b2",  # a digit to str.isdigit, not to int
        "imagine:reroll:\u0661",  # Arabic-Indic one
        f"imagine:reroll:{MAX_JOB_ID + 1}",
        "imagine:reroll:" + "9" * 30,
        "imagine:reroll: 1",
        "imagine:reroll:1:2",
        "imagine:reroll:",
        "imagine:tier:mega:1",
        "imagine:tier:FAST:1",
        "imagine:tier:1",
        "imagine:Reroll:1",
        "imagine:cancel:1",
        "other:reroll:1",
    ],
)
def test_a_forged_custom_id_names_no_click(custom_id: str) -> None:
    assert parse_click(custom_id) is None


def test_a_result_has_at_most_five_buttons_a_row() -> None:
    view = result_view(a_job())

    assert all(len(row) <= 5 for row in labels(view))


def test_a_results_buttons_never_time_out() -> None:
    assert result_view(a_job()).timeout is None


@pytest.mark.parametrize("tier", list(Tier))
def test_a_result_offers_every_tier_but_its_own(tier: Tier) -> None:
    view = result_view(a_job(request=a_request(tier=tier)))

    shown = set(itertools.chain.from_iterable(labels(view)))
    names = {Tier.FAST: "Fast", Tier.STANDARD: "Standard", Tier.ULTRA: "Ultra"}
    assert shown == {"Reroll", "Edit", "Details", "Share", "Delete"} | {
        names[other] for other in Tier if other is not tier
    }


def test_a_reroll_of_a_seeded_request_never_repeats_its_seed() -> None:
    seeds = iter([42, 42, 9])

    request = rerolled(a_job(request=a_request(seed=42)), choose_seed=lambda: next(seeds))

    assert request.seed == 9


def test_a_reroll_of_an_unseeded_request_stays_unseeded() -> None:
    assert rerolled(a_job(), choose_seed=lambda: 5).seed is None


def test_a_new_request_asks_for_every_image_of_a_split_request() -> None:
    job = a_job(request=a_request(image_count=1), batch_index=2, batch_size=3)

    assert [request.image_count for request in (rerolled(job), at_tier(job, Tier.ULTRA))] == [3, 3]


def test_another_tier_keeps_the_rest_of_the_request() -> None:
    job = a_job(request=a_request(seed=3, negative_prompt="boats"))

    request = at_tier(job, Tier.ULTRA)

    assert (request.tier, request.seed, request.negative_prompt) == (Tier.ULTRA, 3, "boats")
    assert request.aspect_ratio is job.request.aspect_ratio


def test_an_edit_keeps_the_options_and_seed() -> None:
    job = a_job(request=a_request(seed=3, negative_prompt="boats"))

    request = edited(job, prompt="a lighthouse at dawn", negative_prompt=None)

    assert (request.prompt, request.negative_prompt, request.seed) == (
        "a lighthouse at dawn",
        None,
        3,
    )


def test_the_edit_form_is_prefilled_with_the_prompts() -> None:
    modal = edit_modal(a_job(request=a_request(negative_prompt="boats")))

    texts = submitted_texts(modal.to_dict())
    assert texts == {"prompt": "a lighthouse at dusk", "negative_prompt": "boats"}


def test_the_edit_form_fits_discords_modal_limits() -> None:
    modal = edit_modal(a_job(id=MAX_JOB_ID, request=a_request(WORST_PROMPT)))

    payload = modal.to_dict()
    assert len(payload["title"]) <= 45
    assert len(payload["custom_id"]) <= 100
    for label in payload["components"]:
        assert len(label["label"]) <= 45
        assert len(label.get("description") or "") <= 100
        assert len(label["component"].get("value") or "") <= 4000


def test_a_modal_submit_is_read_from_labels_and_action_rows() -> None:
    data: dict[str, Any] = {
        "custom_id": "imagine:edit:7",
        "components": [
            {"type": 18, "id": 1, "component": {"type": 4, "custom_id": "prompt", "value": "a"}},
            {"type": 1, "id": 3, "components": [{"type": 4, "custom_id": "other", "value": "b"}]},
        ],
    }

    assert submitted_texts(data) == {"prompt": "a", "other": "b"}


def test_details_of_the_wordiest_job_fit_discords_limits() -> None:
    job = a_job(
        id=MAX_JOB_ID,
        request=a_request(WORST_PROMPT, negative_prompt=WORST_PROMPT, seed=2**32 - 1),
        effective_prompt=WORST_PROMPT[1:],
        remix_of=MAX_JOB_ID - 1,
        provider="kkiai",
    )

    embed = details_embed(job).to_dict()

    texts = [embed.get("title", ""), embed.get("description", "")]
    texts += [text for field in embed.get("fields", []) for text in (field["name"], field["value"])]
    assert sum(len(text) for text in texts) <= 6000
    assert len(embed.get("description", "")) <= 4096
    assert all(len(field["value"]) <= 1024 for field in embed.get("fields", []))


def test_details_attach_the_prompts_the_embed_cannot_show_whole() -> None:
    job = a_job(request=a_request(WORST_PROMPT, negative_prompt="boats"))

    [attached] = details_files(job, details_embed(job))

    text = attached.fp.read().decode()
    assert WORST_PROMPT in text
    assert "boats" in text


def test_details_attach_nothing_when_the_embed_shows_the_prompts_whole() -> None:
    job = a_job(request=a_request("a *bold* lighthouse", negative_prompt="boats"))

    assert details_files(job, details_embed(job)) == []
