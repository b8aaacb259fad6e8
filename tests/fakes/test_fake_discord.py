"""The fake Discord against the real discord.py client: login, sync, gateway, interactions."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.fake_discord import CallbackRefused, FakeDiscord, running_fake_discord

PNG = b"\x89PNG\r\n\x1a\nfake image bytes"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with running_fake_discord() as fake:
        yield fake


def make_bot() -> commands.Bot:
    """A plain bot with the guilds intent only and three commands that exercise the fake."""
    intents = discord.Intents.none()
    intents.guilds = True
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=intents,
        help_command=None,
        guild_ready_timeout=0.05,
    )

    @bot.tree.command(name="ping", description="Answer pong, then post a file")
    @app_commands.describe(text="What to echo")
    async def ping(interaction: discord.Interaction[discord.Client], text: str) -> None:
        await interaction.response.send_message("pong: " + text, ephemeral=True)
        assert isinstance(interaction.channel, discord.TextChannel)
        await interaction.channel.send("hello", file=discord.File(io.BytesIO(PNG), "a.png"))

    @bot.tree.command(name="slow", description="Think, then follow up and edit")
    async def slow(interaction: discord.Interaction[discord.Client]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("done", file=discord.File(io.BytesIO(PNG), "b.png"))
        await interaction.followup.send("second", ephemeral=True)
        await interaction.edit_original_response(content="edited", attachments=[])

    @bot.tree.command(name="late", description="Answer after the deadline")
    async def late(interaction: discord.Interaction[discord.Client]) -> None:
        await asyncio.sleep(0.2)
        await interaction.response.send_message("too late")

    return bot


@contextlib.asynccontextmanager
async def connected(fake: FakeDiscord, bot: commands.Bot) -> AsyncIterator[asyncio.Task[None]]:
    """Log in, sync, connect and wait for on_ready; close everything afterwards."""
    try:
        await bot.login(fake.token)
        task = asyncio.create_task(bot.connect())
        try:
            await bot.tree.sync()
            await fake.wait_until_ready(timeout=2)
            await asyncio.wait_for(bot.wait_until_ready(), timeout=2)
            yield task
        finally:
            await bot.close()
            await task
    finally:
        await bot.close()


async def test_slash_command_round_trip(fake: FakeDiscord) -> None:
    bot = make_bot()
    async with connected(fake, bot):
        [ping] = [
            command for command in await fake.wait_for_commands() if command["name"] == "ping"
        ]
        assert ping["application_id"] == str(fake.application_id)
        assert ping["options"] == [
            {"type": 3, "name": "text", "description": "What to echo", "required": True}
        ]
        assert bot.get_guild(fake.guild_id) is not None

        interaction = await fake.invoke_slash_command("ping", {"text": "hi"})
        response = await interaction.wait_for_response(timeout=2)
        [message] = await fake.wait_for_channel_message(timeout=2)

    assert response["type"] == 4
    assert response["data"]["content"] == "pong: hi"
    assert response["data"]["flags"] == 64
    assert response["message"]["interaction_metadata"]["user"]["id"] == str(fake.user_id)
    assert interaction.response_delay is not None
    assert interaction.response_delay < 3
    assert message["content"] == "hello"
    assert message["attachments"] == [
        {"filename": "a.png", "content_type": "application/octet-stream", "data": PNG}
    ]
    assert message["message"]["author"]["id"] == str(fake.bot_user_id)
    assert message["message"]["attachments"][0]["content_type"] == "image/png"
    assert ("GET", "/api/v10/users/@me") in fake.requests
    assert ("GET", "/api/v10/oauth2/applications/@me") in fake.requests
    assert ("GET", "/gateway") in fake.requests


async def test_guild_sync_and_invoke(fake: FakeDiscord) -> None:
    bot = make_bot()
    guild = discord.Object(fake.guild_id)
    async with connected(fake, bot):
        bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
        assert {command.guild_id for command in synced} == {fake.guild_id}
        assert fake.guild_commands[fake.guild_id] == fake.commands

        interaction = await fake.invoke_slash_command("ping", {"text": "guild"})
        response = await interaction.wait_for_response(timeout=2)
        await fake.wait_for_channel_message(timeout=2)

    assert response["data"]["content"] == "pong: guild"


async def test_deferral_followups_and_edit(fake: FakeDiscord) -> None:
    bot = make_bot()
    async with connected(fake, bot):
        interaction = await fake.invoke_slash_command("slow")
        deferral = await interaction.wait_for_response(timeout=2)
        first = await fake.wait_for_followup(interaction.token, timeout=2)
        await interaction.wait_for_record("edit", timeout=2)

    assert deferral["type"] == 5
    assert deferral["message"]["flags"] == 64 | 128
    # Discord: the first followup after a deferral edits the loading message.
    assert first["message"]["id"] == interaction.original_message_id
    assert first["attachments"][0]["data"] == PNG
    kinds = [record["kind"] for record in interaction.responses]
    assert kinds == ["callback", "followup", "followup", "edit"]
    second, edit = interaction.responses[2:]
    assert second["message"]["id"] != interaction.original_message_id
    assert second["flags"] == 64
    assert edit["message"]["content"] == "edited"
    assert edit["message"]["attachments"] == []
    assert edit["message"]["flags"] == 64


async def test_answer_after_deadline_is_unknown_interaction() -> None:
    async with running_fake_discord(interaction_deadline=0.05) as fake:
        bot = make_bot()
        errors: asyncio.Queue[app_commands.AppCommandError] = asyncio.Queue()

        async def on_error(
            interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
        ) -> None:
            errors.put_nowait(error)

        bot.tree.on_error = on_error  # type: ignore[method-assign]
        async with connected(fake, bot):
            interaction = await fake.invoke_slash_command("late")
            error = await asyncio.wait_for(errors.get(), timeout=2)

    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.NotFound)
    assert error.original.code == 10062
    assert interaction.responses == []


async def test_resume_replays_what_was_missed(fake: FakeDiscord) -> None:
    bot = make_bot()
    async with connected(fake, bot):
        resumed = asyncio.ensure_future(bot.wait_for("resumed", timeout=2))
        await fake.disconnect_gateway()
        interaction = await fake.invoke_slash_command("ping", {"text": "again"})
        await resumed
        response = await interaction.wait_for_response(timeout=2)
        await fake.wait_for_channel_message(timeout=2)

    assert response["data"]["content"] == "pong: again"
    assert fake.requests.count(("GET", "/gateway")) == 2


async def test_bad_token_fails_login(fake: FakeDiscord) -> None:
    bot = make_bot()
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    assert ("GET", "/api/v10/users/@me") in fake.requests


async def test_identify_with_bad_token_is_closed_4004(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    bot.http.token = "not-the-token"
    with pytest.raises(discord.ConnectionClosed) as closed:
        await bot.connect()
    await bot.close()
    assert closed.value.code == 4004


async def test_deleted_and_forbidden_channels(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    try:
        fake.delete_channel(1)
        fake.forbid_channel(2)
        with pytest.raises(discord.NotFound) as missing:
            await bot.get_partial_messageable(1).send("x")
        with pytest.raises(discord.Forbidden) as forbidden:
            await bot.get_partial_messageable(2).send("x")
    finally:
        await bot.close()
    assert missing.value.code == 10003
    assert forbidden.value.code == 50013
    assert fake.channel_messages.get(1) is None
    assert fake.channel_messages.get(2) is None


async def test_enforced_nonce_posts_once(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    channel = bot.get_partial_messageable(fake.channel_id, guild_id=fake.guild_id)
    try:
        first = await channel.send("<@5> done", nonce="job-1")
        again = await channel.send("<@5> done", nonce="job-1")
        other = await channel.send("<@5> done", nonce="job-2")
    finally:
        await bot.close()
    assert first.id == again.id != other.id
    records = fake.channel_messages[fake.channel_id]
    assert [record["nonce"] for record in records] == ["job-1", "job-2"]
    assert records[0]["enforce_nonce"] is True


async def test_allowed_mentions_decide_who_is_pinged(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    channel = bot.get_partial_messageable(fake.channel_id)
    alice, bob = 100_000_000_000_000_001, 100_000_000_000_000_002
    content = f"<@{alice}> <@{bob}>"
    try:
        silent = await channel.send(content, allowed_mentions=discord.AllowedMentions.none())
        one = await channel.send(
            content, allowed_mentions=discord.AllowedMentions(users=[discord.Object(alice)])
        )
        default = await channel.send(content)
    finally:
        await bot.close()
    assert silent.raw_mentions == [alice, bob]
    assert silent.mentions == []
    assert [user.id for user in one.mentions] == [alice]
    assert [user.id for user in default.mentions] == [alice, bob]


async def test_oversized_upload_is_413() -> None:
    async with running_fake_discord(attachment_size_limit=16) as fake:
        bot = make_bot()
        await bot.login(fake.token)
        files = [discord.File(io.BytesIO(b"x" * 10), f"{n}.png") for n in range(2)]
        try:
            with pytest.raises(discord.HTTPException) as too_large:
                await bot.get_partial_messageable(fake.channel_id).send(files=files)
        finally:
            await bot.close()
    assert too_large.value.status == 413
    assert too_large.value.code == 40005
    assert fake.channel_messages.get(fake.channel_id) is None


async def test_invalid_messages_are_refused(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    channel = bot.get_partial_messageable(fake.channel_id)
    try:
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        with pytest.raises(discord.HTTPException) as empty:
            await channel.send("")
    finally:
        await bot.close()
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "content" in too_long.value.text
    assert (empty.value.status, empty.value.code) == (400, 50006)


async def test_unknown_route_is_404_and_logged(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    try:
        with pytest.raises(discord.NotFound) as unknown:
            await bot.http.request(discord.http.Route("GET", "/channels/1/pins"))
    finally:
        await bot.close()
    assert unknown.value.code == 0
    assert ("GET", "/api/v10/channels/1/pins") in fake.requests


async def test_invoke_checks_options_like_discord(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    try:
        await bot.tree.sync()
    finally:
        await bot.close()
    with pytest.raises(ValueError, match="no option"):
        await fake.invoke_slash_command("ping", {"txt": "hi"})
    with pytest.raises(ValueError, match="needs option"):
        await fake.invoke_slash_command("ping")
    with pytest.raises(ValueError, match="cannot take"):
        await fake.invoke_slash_command("ping", {"text": 3})
    with pytest.raises(ValueError, match="not a synced"):
        await fake.invoke_slash_command("pong")


async def test_invalid_commands_are_refused(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    payload = [{"name": "Bad Name", "description": "x", "type": 1}]
    try:
        with pytest.raises(discord.HTTPException) as invalid:
            await bot.http.bulk_upsert_global_commands(fake.application_id, payload)
    finally:
        await bot.close()
    assert (invalid.value.status, invalid.value.code) == (400, 50035)
    assert fake.commands == []


async def test_gateway_refuses_compression_it_cannot_send(fake: FakeDiscord) -> None:
    url = f"{fake.gateway_url}?v=10&encoding=json&compress=zstd-stream"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url)
    assert refused.value.status == 400


async def test_many_guilds_each_with_its_channel() -> None:
    async with running_fake_discord(guilds=3) as fake:
        bot = make_bot()
        async with connected(fake, bot):
            assert len(fake.guild_ids) == 3
            assert sorted(guild.id for guild in bot.guilds) == sorted(fake.guild_ids)
            third, channel = list(fake.guild_channels.items())[2]
            guild = bot.get_guild(third)
            assert guild is not None
            assert [c.id for c in guild.text_channels] == [channel]

            # Guild commands are per guild; a guild the bot is not in is refused.
            bot.tree.copy_global_to(guild=discord.Object(third))
            synced = await bot.tree.sync(guild=discord.Object(third))
            assert {command.guild_id for command in synced} == {third}
            assert fake.guild_ids[0] not in fake.guild_commands
            with pytest.raises(discord.Forbidden):
                await bot.tree.sync(guild=discord.Object(1))

            interaction = await fake.invoke_slash_command("ping", {"text": "g3"}, guild_id=third)
            response = await interaction.wait_for_response(timeout=2)
            [message] = await fake.wait_for_channel_message(channel, timeout=2)
            await fake.wait_until("one message in all", lambda: fake.channel_message_count == 1)

    assert (interaction.guild_id, interaction.channel_id) == (third, channel)
    assert response["message"]["interaction_metadata"]["authorizing_integration_owners"] == {
        "0": str(third)
    }
    assert message["message"]["channel_id"] == str(channel)
    assert fake.channel_messages.get(fake.channel_id) is None
    assert fake.interactions() == [interaction]
    with pytest.raises(ValueError, match="not one of the fake's"):
        await fake.invoke_slash_command("ping", {"text": "x"}, guild_id=1)


async def test_a_late_callback_is_still_timed() -> None:
    async with running_fake_discord(interaction_deadline=0.05) as fake:
        bot = make_bot()
        bot.tree.on_error = _ignore_errors  # type: ignore[method-assign]
        async with connected(fake, bot):
            interaction = await fake.invoke_slash_command("late")
            await fake.wait_until(
                "a callback attempt", lambda: interaction.callback_attempted_at is not None
            )

    assert interaction.response_delay is None
    assert interaction.attempt_delay is not None
    assert interaction.attempt_delay >= 0.2


async def _ignore_errors(
    interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
) -> None:
    """The late answer's 10062 is what the test expects; nothing to report."""


async def test_shown_delay_waits_for_what_fills_a_deferral(fake: FakeDiscord) -> None:
    bot = make_bot()
    async with connected(fake, bot):
        deferred = await fake.invoke_slash_command("slow")
        await deferred.wait_for_record("edit", timeout=2)
        answered = await fake.invoke_slash_command("ping", {"text": "now"})
        await answered.wait_for_response(timeout=2)
        await fake.wait_for_channel_message(timeout=2)

    # A deferral is a reply but shows nothing yet; the followup filling it does.
    assert deferred.response_delay is not None
    assert deferred.shown_delay is not None
    assert deferred.shown_delay > deferred.response_delay
    assert deferred.shown_delay == deferred.recorded_at[1] - deferred.created_at
    # A message callback is both at once.
    assert answered.shown_delay == answered.response_delay
    assert len(answered.recorded_at) == len(answered.responses) == 1


class NameForm(discord.ui.Modal):
    """A modal as discord.py keeps it in memory: one input in a label, one in an action row."""

    name: discord.ui.Label[discord.ui.View] = discord.ui.Label(
        text="Name", component=discord.ui.TextInput(custom_id="name")
    )
    motto: discord.ui.TextInput[discord.ui.View] = discord.ui.TextInput(
        label="Motto", custom_id="motto", required=False, default="carpe diem"
    )

    def __init__(self, seen: asyncio.Queue[object], *, title: str = "Who are you?") -> None:
        super().__init__(title=title, custom_id="name-form")
        self.seen = seen

    async def on_submit(self, interaction: discord.Interaction[discord.Client]) -> None:
        assert isinstance(self.name.component, discord.ui.TextInput)
        self.seen.put_nowait((self.name.component.value, self.motto.value))
        await interaction.response.send_message("thanks", ephemeral=True)


class ModalAnsweringForm(NameForm):
    """Answers its submit with another modal, which Discord does not allow."""

    async def on_submit(self, interaction: discord.Interaction[discord.Client]) -> None:
        try:
            await interaction.response.send_modal(NameForm(self.seen))
        except discord.HTTPException as exc:
            self.seen.put_nowait(exc)


def make_form_bot(seen: asyncio.Queue[object], form: type[NameForm] = NameForm) -> commands.Bot:
    """The test bot, plus /form, which opens ``form``, and /bad-form, whose title is too long;
    what they see (submitted values, errors) goes to ``seen``."""
    bot = make_bot()

    @bot.tree.command(name="form", description="Open a form")
    async def open_form(interaction: discord.Interaction[discord.Client]) -> None:
        await interaction.response.send_modal(form(seen))

    @bot.tree.command(name="bad-form", description="Open a form Discord refuses")
    async def bad_form(interaction: discord.Interaction[discord.Client]) -> None:
        try:
            await interaction.response.send_modal(form(seen, title="x" * 46))
        except discord.HTTPException as exc:
            seen.put_nowait(exc)

    return bot


async def test_a_modal_submit_reaches_discord_py_as_discord_sends_it(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_form_bot(seen)):
        opened = await fake.invoke_slash_command("form")
        modal = await opened.wait_for_response(timeout=2)
        submitted = await fake.submit_modal(opened, {"name": "Ada"})
        answer = await asyncio.wait_for(seen.get(), timeout=2)
        reply = await submitted.wait_for_response(timeout=2)

    assert modal["type"] == 9
    assert modal["data"]["custom_id"] == "name-form"
    assert answer == ("Ada", "carpe diem")
    assert reply["data"]["content"] == "thanks"
    assert (submitted.user_id, submitted.channel_id) == (opened.user_id, opened.channel_id)


async def test_submit_modal_takes_only_what_a_member_could_submit(fake: FakeDiscord) -> None:
    async with connected(fake, make_form_bot(asyncio.Queue())):
        opened = await fake.invoke_slash_command("form")
        await opened.wait_for_response(timeout=2)
        unanswered = await fake.invoke_slash_command("ping", {"text": "hi"})
        await unanswered.wait_for_response(timeout=2)
        await fake.wait_for_channel_message(timeout=2)

        with pytest.raises(ValueError, match="required"):
            await fake.submit_modal(opened, {"name": ""})
        with pytest.raises(ValueError, match="no input"):
            await fake.submit_modal(opened, {"nickname": "Ada"})
        with pytest.raises(ValueError, match="characters"):
            await fake.submit_modal(opened, {"name": "x" * 4001})
        with pytest.raises(ValueError, match="not answered with a modal"):
            await fake.submit_modal(unanswered)


async def test_a_modal_over_discords_limits_is_refused(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_form_bot(seen)):
        opened = await fake.invoke_slash_command("bad-form")
        error = await asyncio.wait_for(seen.get(), timeout=2)

    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 50035)
    assert "title" in error.text
    assert opened.responses == []


async def test_a_modal_cannot_answer_a_modal_submit(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_form_bot(seen, ModalAnsweringForm)):
        opened = await fake.invoke_slash_command("form")
        await opened.wait_for_response(timeout=2)
        submitted = await fake.submit_modal(opened, {"name": "Ada"})
        error = await asyncio.wait_for(seen.get(), timeout=2)

    assert isinstance(error, discord.HTTPException)
    assert (error.status, error.code) == (400, 50035)
    assert submitted.responses == []


async def test_the_bot_deletes_its_channel_message_once(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    channel = bot.get_partial_messageable(fake.channel_id, guild_id=fake.guild_id)
    try:
        message = await channel.send("bye")
        await message.delete()
        with pytest.raises(discord.NotFound) as again:
            await message.delete()
    finally:
        await bot.close()
    assert fake.deleted_message_ids == {message.id}
    assert again.value.code == 10008
    assert len(fake.channel_messages[fake.channel_id]) == 1  # the record of the post stays


async def test_a_deleted_messages_buttons_cannot_be_clicked(fake: FakeDiscord) -> None:
    bot = make_bot()
    async with connected(fake, bot):
        channel = bot.get_partial_messageable(fake.channel_id, guild_id=fake.guild_id)
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Go", custom_id="go"))
        message = await channel.send("press", view=view)
        await message.delete()
        [posted] = fake.channel_messages[fake.channel_id]

        with pytest.raises(ValueError, match="deleted"):
            await fake.click_button("go", posted["message"])


async def test_a_button_custom_id_past_100_characters_is_refused(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Go", custom_id="x" * 101))
    try:
        with pytest.raises(discord.HTTPException) as refused:
            await bot.get_partial_messageable(fake.channel_id).send("press", view=view)
    finally:
        await bot.close()
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "custom_id" in refused.value.text


async def test_a_direct_message_reaches_the_members_record(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    try:
        dm = await bot.create_dm(discord.Object(fake.user_id))
        sent = await dm.send(
            "your image",
            embed=discord.Embed(title="Done"),
            file=discord.File(io.BytesIO(PNG), "c.png"),
            nonce="dm-1",
        )
    finally:
        await bot.close()
    assert isinstance(dm, discord.DMChannel)
    assert dm.recipient is not None
    assert dm.recipient.id == fake.user_id
    assert dm.id == fake.direct_message_channels[fake.user_id] == sent.channel.id
    [record] = fake.direct_messages(fake.user_id)
    assert record["content"] == "your image"
    assert record["embeds"][0]["title"] == "Done"
    assert record["nonce"] == "dm-1"
    assert record["attachments"] == [
        {"filename": "c.png", "content_type": "application/octet-stream", "data": PNG}
    ]
    assert record["message"]["id"] == str(sent.id)
    assert fake.channel_messages[dm.id] == [record]
    assert fake.channel_messages.get(fake.channel_id) is None
    assert fake.direct_messages(fake.user_id + 1) == []


async def test_the_same_recipient_gets_the_same_dm_channel(fake: FakeDiscord) -> None:
    bot = make_bot()
    other = fake.user_id + 1
    await bot.login(fake.token)
    try:
        first = await bot.http.start_private_message(fake.user_id)
        again = await bot.http.start_private_message(fake.user_id)
        by_string = await bot.http.request(
            discord.http.Route("POST", "/users/@me/channels"),
            json={"recipient_id": str(fake.user_id)},
        )
        elsewhere = await bot.http.start_private_message(other)
    finally:
        await bot.close()
    assert first == {
        "id": str(fake.direct_message_channels[fake.user_id]),
        "type": 1,
        "last_message_id": None,
        "flags": 0,
        "recipients": [first["recipients"][0]],
    }
    assert first["recipients"][0]["id"] == str(fake.user_id)
    assert again["id"] == by_string["id"] == first["id"] != elsewhere["id"]
    assert elsewhere["recipients"][0]["id"] == str(other)
    assert fake.requests.count(("POST", "/api/v10/users/@me/channels")) == 4


async def test_a_dm_channel_needs_a_recipient_snowflake(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    route = discord.http.Route("POST", "/users/@me/channels")
    try:
        with pytest.raises(discord.HTTPException) as missing:
            await bot.http.request(route, json={})
        with pytest.raises(discord.HTTPException) as not_snowflake:
            await bot.http.request(route, json={"recipient_id": "me"})
    finally:
        await bot.close()
    assert (missing.value.status, missing.value.code) == (400, 50035)
    assert "recipient_id" in missing.value.text
    assert (not_snowflake.value.status, not_snowflake.value.code) == (400, 50035)
    assert fake.direct_message_channels == {}


async def test_closed_direct_messages_answer_403_50007(fake: FakeDiscord) -> None:
    bot = make_bot()
    stranger = fake.user_id + 1
    fake.close_direct_messages(fake.user_id)
    fake.non_members.add(stranger)  # shares no server with the bot
    await bot.login(fake.token)
    try:
        dm = await bot.create_dm(discord.Object(fake.user_id))  # opening still works
        with pytest.raises(discord.Forbidden) as closed:
            await dm.send("hello")
        with pytest.raises(discord.Forbidden) as no_shared_server:
            await (await bot.create_dm(discord.Object(stranger))).send("hello")
        fake.open_direct_messages(fake.user_id)
        await dm.send("hello again")
    finally:
        await bot.close()
    assert (closed.value.status, closed.value.code) == (403, 50007)
    assert closed.value.text == "Cannot send messages to this user"
    assert no_shared_server.value.code == 50007
    assert [record["content"] for record in fake.direct_messages(fake.user_id)] == ["hello again"]


async def test_an_enforced_nonce_sends_a_direct_message_once(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    try:
        dm = await bot.create_dm(discord.Object(fake.user_id))
        first = await dm.send("done", nonce="dm-job-1")
        again = await dm.send("done", nonce="dm-job-1")
        channel = await bot.http.start_private_message(fake.user_id)
    finally:
        await bot.close()
    assert first.id == again.id
    assert len(fake.direct_messages(fake.user_id)) == 1
    assert channel["last_message_id"] == str(first.id)


COLOURS = ["black", "blue", "green", "grey", "red"]


def make_autocomplete_bot(seen: asyncio.Queue[object]) -> commands.Bot:
    """The test bot, plus commands whose options autocomplete; every autocomplete callback
    puts what reached it (the typed value, and the command for /palette) in ``seen``.

    /paint: ``colour`` offers the colours starting with what was typed, ``size`` offers its
    typed text back. /flood offers 30 choices, one more than Discord allows after 25.
    /chatty answers its autocomplete with a message. /palette mix pick is in a subcommand
    group. /quiet never answers, so a test can answer in its stead.
    """
    bot = make_bot()

    async def colour_names(
        interaction: discord.Interaction[discord.Client], current: str
    ) -> list[app_commands.Choice[str]]:
        seen.put_nowait(current)
        return [
            app_commands.Choice(name=colour.title(), value=colour)
            for colour in COLOURS
            if colour.startswith(current)
        ]

    async def sizes(
        interaction: discord.Interaction[discord.Client], current: str
    ) -> list[app_commands.Choice[int]]:
        seen.put_nowait(current)
        return [app_commands.Choice(name=f"{current} px", value=int(current or 0))]

    async def too_many(
        interaction: discord.Interaction[discord.Client], current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"n{n}", value=f"v{n}") for n in range(30)]

    async def answer_with_a_message(
        interaction: discord.Interaction[discord.Client], current: str
    ) -> list[app_commands.Choice[str]]:
        await interaction.response.send_message("not a choice")
        return []

    async def palette_colours(
        interaction: discord.Interaction[discord.Client], current: str
    ) -> list[app_commands.Choice[str]]:
        assert interaction.command is not None
        seen.put_nowait((interaction.command.qualified_name, interaction.namespace.base, current))
        return [app_commands.Choice(name=current, value=current)]

    @bot.tree.command(name="paint", description="Paint in a colour")
    @app_commands.autocomplete(colour=colour_names)
    @app_commands.autocomplete(size=sizes)
    async def paint(
        interaction: discord.Interaction[discord.Client], colour: str, size: int = 1
    ) -> None:
        await interaction.response.send_message(f"{colour} {size}")

    @bot.tree.command(name="flood", description="Offer too many choices")
    @app_commands.autocomplete(word=too_many)
    async def flood(interaction: discord.Interaction[discord.Client], word: str) -> None:
        await interaction.response.send_message(word)

    @bot.tree.command(name="chatty", description="Answer an autocomplete with a message")
    @app_commands.autocomplete(word=answer_with_a_message)
    async def chatty(interaction: discord.Interaction[discord.Client], word: str) -> None:
        await interaction.response.send_message(word)

    @bot.tree.command(name="quiet", description="Never answer")
    async def quiet(interaction: discord.Interaction[discord.Client]) -> None:
        """Leaves the interaction to the test."""

    palette = app_commands.Group(name="palette", description="Colours")
    mix = app_commands.Group(name="mix", description="Mixed colours", parent=palette)

    @mix.command(name="pick", description="Pick a mixed colour")
    @app_commands.autocomplete(colour=palette_colours)
    async def pick(
        interaction: discord.Interaction[discord.Client], base: str, colour: str
    ) -> None:
        await interaction.response.send_message(colour)

    bot.tree.add_command(palette)
    return bot


async def test_autocomplete_returns_the_choices_the_bot_answered(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        choices = await fake.autocomplete("paint", {"colour": "b"}, focused="colour", timeout=2)
        [interaction] = fake.interactions()

    assert choices == [{"name": "Black", "value": "black"}, {"name": "Blue", "value": "blue"}]
    assert interaction.type == 4
    [callback] = interaction.responses
    assert callback["type"] == 8


async def test_the_typed_text_reaches_the_autocomplete_callback(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        await fake.autocomplete("paint", {"colour": "gre"}, focused="colour", timeout=2)
        typed = await asyncio.wait_for(seen.get(), timeout=2)

    assert typed == "gre"


async def test_an_integer_option_is_focused_as_its_typed_text(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        choices = await fake.autocomplete(
            "paint", {"colour": "red", "size": "12"}, focused="size", timeout=2
        )
        typed = await asyncio.wait_for(seen.get(), timeout=2)

    # discord.py passes a focused value on as Discord sent it: the text, not a number.
    assert typed == "12"
    assert choices == [{"name": "12 px", "value": 12}]


async def test_autocomplete_in_a_subcommand_group_reaches_its_command(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        choices = await fake.autocomplete(
            "palette mix pick", {"base": "red", "colour": "ora"}, focused="colour", timeout=2
        )
        reached = await asyncio.wait_for(seen.get(), timeout=2)

    assert reached == ("palette mix pick", "red", "ora")
    assert choices == [{"name": "ora", "value": "ora"}]


async def test_more_than_25_choices_are_refused_like_discord(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        with pytest.raises(CallbackRefused) as refused:
            await fake.autocomplete("flood", focused="word", timeout=2)
        [interaction] = fake.interactions()

    # discord.py 2.7 sends all 30 choices; the 400 it gets is only logged by the tree.
    assert refused.value.status == 400
    assert refused.value.body["code"] == 50035
    assert "choices" in refused.value.body["errors"]["data"]
    assert interaction.responses == []
    [logged] = [r for r in caplog.records if "Ignoring exception in autocomplete" in r.message]
    assert logged.exc_info is not None
    assert isinstance(logged.exc_info[1], discord.HTTPException)


async def test_a_message_cannot_answer_an_autocomplete(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        with pytest.raises(CallbackRefused) as refused:
            await fake.autocomplete("chatty", {"word": "hi"}, focused="word", timeout=2)

    assert (refused.value.status, refused.value.body["code"]) == (400, 50035)
    assert "type" in refused.value.body["errors"]
    assert fake.channel_message_count == 0


async def test_choices_cannot_answer_a_slash_command(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        interaction = await fake.invoke_slash_command("quiet")
        url = f"{fake.base_url}/api/v10/interactions/{interaction.id}/{interaction.token}/callback"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"type": 8, "data": {"choices": []}}) as answer,
        ):
            status, body = answer.status, await answer.json()

    assert (status, body["code"]) == (400, 50035)
    assert interaction.responses == []


async def test_autocomplete_needs_an_option_synced_with_autocomplete(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        with pytest.raises(ValueError, match="not synced with autocomplete"):
            await fake.autocomplete("ping", {"text": "h"}, focused="text", timeout=2)

    assert fake.interactions() == []


async def test_autocomplete_is_synced_on_the_option(fake: FakeDiscord) -> None:
    seen: asyncio.Queue[object] = asyncio.Queue()
    async with connected(fake, make_autocomplete_bot(seen)):
        [paint] = [c for c in await fake.wait_for_commands() if c["name"] == "paint"]

    assert [option.get("autocomplete") for option in paint["options"]] == [True, True]


async def test_autocomplete_with_choices_is_refused_on_sync(fake: FakeDiscord) -> None:
    bot = make_bot()
    await bot.login(fake.token)
    option = {
        "type": 3,
        "name": "colour",
        "description": "A colour",
        "autocomplete": True,
        "choices": [{"name": "Red", "value": "red"}],
    }
    payload = [{"name": "paint", "description": "Paint", "type": 1, "options": [option]}]
    try:
        with pytest.raises(discord.HTTPException) as invalid:
            await bot.http.bulk_upsert_global_commands(fake.application_id, payload)
    finally:
        await bot.close()
    assert (invalid.value.status, invalid.value.code) == (400, 50035)
    assert fake.commands == []
