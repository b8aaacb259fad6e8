"""The buttons under a result: Reroll, the other tiers, Edit, Details, Share (issue 12) and
Delete (issue 10).

Everything a button knows is in its ``custom_id``: ``imagine:<action>:<job_id>``, and
``imagine:tier:<tier>:<job_id>`` for the tier buttons. There is no view in memory, so a
result posted before a restart works after it (discord.py's ``DynamicItem``, matched by
``custom_id`` on every click). A ``custom_id`` is member-visible text and grants nothing: on
every click the bot loads the job it names and checks the clicker's rights (cogs/results.py).

How a click reaches the job service: ``ResultButton`` is one class, registered by the results
cog, and it looks that cog up on ``interaction.client`` (the bot the composition root built,
holding the cog it added) instead of being a subclass bound to the service. A bound subclass
would not survive the first post: sending a view stores its dynamic items' classes by
template, so the publisher's ``result_view`` (built without services) would replace the bound
class with its plain one, and every later click would reach a class with no service.
"""

from __future__ import annotations

import dataclasses
import enum
import io
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import discord
from discord.ext import commands

from bot.core.domain import MAX_SEED, GenerationRequest, Job, Option, Tier, parse_job_id
from bot.core.errors import InvalidRequest
from bot.messages import (
    COLOUR_WAIT,
    DESCRIPTION_LIMIT,
    FIELD_VALUE_LIMIT,
    SAFETY_LABELS,
    TIER_LABELS,
    fit,
    not_applied_text,
    quote,
    remix_text,
)
from bot.tree import reply_with_error

PREFIX = "imagine"
# Discord's limit for a component's or a modal's custom_id.
CUSTOM_ID_LIMIT = 100
# Discord's limits for a modal: its title and a label's text, and a text input's value.
MODAL_TITLE_LIMIT = 45
TEXT_INPUT_LIMIT = 4000
PROMPT_INPUT = "prompt"
NEGATIVE_INPUT = "negative_prompt"
# What the member reads when a button names no job of this channel: the job service's own
# words for an unknown job, so a forged id learns nothing about which jobs exist.
UNKNOWN_IMAGE = "I no longer know that image; try /imagine instead."
# The cog that answers clicks; ResultButton finds it by this name.
RESULTS_COG = "Results"
# A message holds at most 5 buttons per action row (Discord's component limits).
BUTTONS_PER_ROW = 5


class Action(enum.StrEnum):
    REROLL = "reroll"
    TIER = "tier"
    EDIT = "edit"
    DETAILS = "details"
    DELETE = "delete"
    SHARE = "share"  # opens the prompt library's share form (bot/library_components.py)


# Every custom_id a result button can carry, and any text after one of these actions, so a
# malformed one still reaches the cog and is refused in words (a template it did not match
# would leave the click unanswered: "This interaction failed"). Only these actions: the
# queue's "imagine:cancel:<id>" belongs to another button.
TEMPLATE = rf"(?s){PREFIX}:(?:{'|'.join(re.escape(action.value) for action in Action)}):.*"


@dataclass(frozen=True, slots=True)
class Click:
    """What a result button asks: an action on a job, at ``tier`` for the tier buttons."""

    action: Action
    job_id: int
    tier: Tier | None = None

    @property
    def custom_id(self) -> str:
        if self.action is Action.TIER:
            assert self.tier is not None
            return f"{PREFIX}:{self.action.value}:{self.tier.value}:{self.job_id}"
        return f"{PREFIX}:{self.action.value}:{self.job_id}"


def parse_click(custom_id: str) -> Click | None:
    """The click a ``custom_id`` names, or None unless it is exactly one the bot makes: a known
    action, a tier of the enum, a job id of ASCII digits within SQLite's range."""
    parts = custom_id.split(":")
    if len(parts) < 3 or parts[0] != PREFIX:
        return None
    try:
        action = Action(parts[1])
    except ValueError:
        return None
    tier: Tier | None = None
    if action is Action.TIER:
        if len(parts) != 4 or parts[2] not in {tier.value for tier in Tier}:
            return None
        tier = Tier(parts[2])
    elif len(parts) != 3:
        return None
    job_id = parse_job_id(parts[-1])
    return None if job_id is None else Click(action, job_id, tier)


# ------------------------------------------------------------------------ the new requests


def asked_for(job: Job) -> GenerationRequest:
    """The member's request as they made it: a request for N images may have become N jobs of
    one image each, and the job service splits it again."""
    return dataclasses.replace(job.request, image_count=job.request.image_count * job.batch_size)


def _random_seed() -> int:
    return random.randint(0, MAX_SEED)


def rerolled(job: Job, *, choose_seed: Callable[[], int] = _random_seed) -> GenerationRequest:
    """The same request again. A seed makes the same image, so a request that had one gets a
    new one (still a chosen seed, so providers that can set one are preferred, as before);
    without one the provider picks at random anyway."""
    request = asked_for(job)
    if request.seed is None:
        return request
    seed = choose_seed()
    while seed == request.seed:
        seed = choose_seed()
    return dataclasses.replace(request, seed=seed)


def at_tier(job: Job, tier: Tier) -> GenerationRequest:
    """The same request, seed and all, at another tier."""
    return dataclasses.replace(asked_for(job), tier=tier)


def edited(job: Job, *, prompt: str, negative_prompt: str | None) -> GenerationRequest:
    """The request with the member's edited texts; every option and the seed stay, so the
    change shows what the new words do. The job service validates them as for /imagine."""
    return dataclasses.replace(asked_for(job), prompt=prompt, negative_prompt=negative_prompt)


# ------------------------------------------------------------------------------ the buttons


@runtime_checkable
class ResultActions(Protocol):
    """What answers a result button (the results cog)."""

    async def on_result_click(
        self, interaction: discord.Interaction[discord.Client], click: Click | None
    ) -> None:
        """Answer a click; ``click`` is None when the custom_id names no job the bot made."""


def result_actions(client: discord.Client) -> ResultActions | None:
    """The cog the composition root added to this bot to answer result buttons."""
    cog = client.get_cog(RESULTS_COG) if isinstance(client, commands.Bot) else None
    return cog if isinstance(cog, ResultActions) else None


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=rf"{PREFIX}:job:(?P<job_id>[0-9]{{1,19}})",
):
    """A button naming one job by id (``imagine:<ACTION>:<job_id>``), as in /queue's Cancel
    and /jobs' Show. Subclasses give their own ``template`` (discord.py matches clicks by it),
    ``ACTION``, ``LABEL`` and ``STYLE``; the id grants nothing, so each callback loads the job
    and checks the clicker's rights."""

    ACTION = "job"
    LABEL = "Job"
    STYLE = discord.ButtonStyle.secondary

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"{self.LABEL} #{job_id}",
                style=self.STYLE,
                custom_id=f"{PREFIX}:{self.ACTION}:{job_id}",
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> JobButton:
        return cls(int(match["job_id"]))


class ResultButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One button under a result; which one is in its custom_id alone (see the module's
    docstring for how it reaches the job service)."""

    def __init__(self, button: discord.ui.Button[Any]) -> None:
        super().__init__(button)
        self.click = parse_click(button.custom_id or "")

    @classmethod
    def of(cls, click: Click, label: str, *, style: discord.ButtonStyle, row: int) -> ResultButton:
        return cls(discord.ui.Button(label=label, style=style, custom_id=click.custom_id, row=row))

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> ResultButton:
        # ``item`` is the button as the message shows it (discord.py found it by custom_id).
        if isinstance(item, discord.ui.Button):
            return cls(item)
        return cls(discord.ui.Button(custom_id=match.string))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        actions = result_actions(interaction.client)
        if actions is None:
            # Sending a result registers this class too, so a click can come while the cog
            # is unloaded.
            refusal = InvalidRequest("These buttons are switched off right now; try /imagine.")
            await reply_with_error(interaction, refusal)
            return
        await actions.on_result_click(interaction, self.click)


def result_view(job: Job) -> discord.ui.View:
    """The buttons under ``job``'s result (for a request of several jobs, its first): the
    ones that make something new on the first row, the ones about this result on the second.

    Fully dynamic, so sending it keeps nothing per message in memory; ``timeout=None`` as the
    buttons never expire.
    """
    view = discord.ui.View(timeout=None)
    secondary = discord.ButtonStyle.secondary
    buttons = [
        ResultButton.of(
            Click(Action.REROLL, job.id), "Reroll", style=discord.ButtonStyle.primary, row=0
        ),
        *(
            ResultButton.of(
                Click(Action.TIER, job.id, tier), TIER_LABELS[tier], style=secondary, row=0
            )
            for tier in Tier
            if tier is not job.request.tier
        ),
        ResultButton.of(Click(Action.EDIT, job.id), "Edit", style=secondary, row=0),
        ResultButton.of(Click(Action.DETAILS, job.id), "Details", style=secondary, row=1),
        ResultButton.of(Click(Action.SHARE, job.id), "Share", style=secondary, row=1),
        ResultButton.of(
            Click(Action.DELETE, job.id), "Delete", style=discord.ButtonStyle.danger, row=1
        ),
    ]
    for button in buttons:
        view.add_item(button)
    return view


# --------------------------------------------------------------------------------- Edit


def edit_modal(job: Job) -> discord.ui.Modal:
    """The Edit form, prefilled with the job's texts; its custom_id names the job as the
    button's did.

    Its submit is answered by custom_id too (ResultsCog's interaction listener), not by this
    object: the cog stops it once sent, so discord.py does not keep it in memory, where it
    would wait for a submit that never comes when the member closes it (Discord never says)
    and be lost to a restart while the member types.
    """
    request = job.request
    modal = discord.ui.Modal(
        title="Edit and make it again",
        custom_id=Click(Action.EDIT, job.id).custom_id,
        timeout=None,
    )
    modal.add_item(
        discord.ui.Label(
            text="Prompt",
            description="What should the image show?",
            component=discord.ui.TextInput(
                custom_id=PROMPT_INPUT,
                style=discord.TextStyle.paragraph,
                default=request.prompt[:TEXT_INPUT_LIMIT],
                max_length=TEXT_INPUT_LIMIT,
            ),
        )
    )
    modal.add_item(
        discord.ui.Label(
            text="Not in the image",
            description="What the image should not show (leave empty for nothing)",
            component=discord.ui.TextInput(
                custom_id=NEGATIVE_INPUT,
                style=discord.TextStyle.paragraph,
                default=(request.negative_prompt or "")[:TEXT_INPUT_LIMIT] or None,
                max_length=TEXT_INPUT_LIMIT,
                required=False,
            ),
        )
    )
    return modal


def submitted_texts(data: Mapping[str, Any] | None) -> dict[str, str]:
    """The text inputs of a modal submit by custom_id. Discord sends each in the component
    that held it: a label (``component``) or, the older way, an action row (``components``)."""
    texts: dict[str, str] = {}
    for holder in (data or {}).get("components") or []:
        inner = [holder["component"]] if "component" in holder else holder.get("components") or []
        for component in inner:
            if component.get("type") == discord.ComponentType.text_input.value:
                texts[str(component.get("custom_id"))] = str(component.get("value") or "")
    return texts


# ------------------------------------------------------------------------------ Details


def _option(value: str, option: Option, job: Job) -> str:
    """An option's value, saying when the member left it at its default."""
    return value if option in job.request.chosen else f"{value} (default)"


def details_embed(job: Job) -> discord.Embed:
    """Everything about a job: its whole prompt, every option, the seed, provider and id."""
    request = job.request
    embed = discord.Embed(
        title=f"Job #{job.id}",
        description=quote(request.prompt, DESCRIPTION_LIMIT),
        colour=COLOUR_WAIT,
    )
    embed.add_field(name="Tier", value=TIER_LABELS[request.tier])
    embed.add_field(name="Aspect ratio", value=request.aspect_ratio.value)
    images = request.image_count * job.batch_size
    count = f"{images} image{'' if images == 1 else 's'}"
    if job.batch_size > 1:
        count += f" (this is job {job.batch_index} of {job.batch_size})"
    embed.add_field(name="Images", value=count)
    safety = SAFETY_LABELS[request.safety]
    embed.add_field(name="Safety", value=_option(safety, Option.SAFETY, job))
    output_format = request.output_format.value.upper()
    embed.add_field(name="Format", value=_option(output_format, Option.OUTPUT_FORMAT, job))
    embed.add_field(
        name="Seed", value="None (random)" if request.seed is None else str(request.seed)
    )
    embed.add_field(
        name="Not in the image",
        value=quote(request.negative_prompt, FIELD_VALUE_LIMIT)
        if request.negative_prompt
        else "Nothing set",
        inline=False,
    )
    provider = quote(job.provider, FIELD_VALUE_LIMIT) if job.provider else "Not chosen yet"
    embed.add_field(name="Provider", value=provider)
    embed.add_field(name="Job id", value=str(job.id))
    embed.add_field(name="Requested by", value=f"<@{job.target.user_id}>")
    if job.shared_from is not None:
        embed.add_field(name="From the prompt library", value=remix_text(job), inline=False)
    elif job.remix_of is not None:
        embed.add_field(name="Remix of", value=f"Job #{job.remix_of}")
    if job.effective_prompt and job.effective_prompt != request.prompt:
        embed.add_field(
            name="Prompt as the service rewrote it",
            value=quote(job.effective_prompt, FIELD_VALUE_LIMIT),
            inline=False,
        )
    if job.not_applied:
        embed.add_field(name="Note", value=not_applied_text(job.not_applied), inline=False)
    return fit(embed)


def _whole(text: str) -> str:
    """``text`` as ``quote`` shows it, unclipped (escaping at most doubles it)."""
    return quote(text, 2 * len(text) + 1)


def details_files(job: Job, shown: discord.Embed) -> list[discord.File]:
    """The prompts as written, in a text file, when the embed could not show them whole (an
    escaped prompt can be twice as long as Discord lets a description be)."""
    request = job.request
    negative = request.negative_prompt
    fields = {field.name: field.value for field in shown.fields}
    if shown.description == _whole(request.prompt) and (
        not negative or fields.get("Not in the image") == _whole(negative)
    ):
        return []
    text = f"Prompt:\n{request.prompt}\n"
    if negative:
        text += f"\nNot in the image:\n{negative}\n"
    return [discord.File(io.BytesIO(text.encode()), filename=f"job-{job.id}-prompt.txt")]
