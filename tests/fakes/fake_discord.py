"""A fake Discord (REST API v10 and gateway) on 127.0.0.1 that the real discord.py talks to.

Nothing in discord.py is mocked: :func:`point_discord_py_at` only moves ``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY`` to this server, and the library's own HTTP client, rate
limiter, zlib decompressor, keep-alive thread and state parsers run unmodified. So the fake has
to answer the way Discord does, down to details discord.py depends on:

- JSON bodies carry ``Content-Type: application/json`` exactly (``json_or_text`` in
  discord/http.py compares the whole header, so ``; charset=utf-8`` would turn a body into a
  string) and a 204 carries no content type at all. Errors are Discord's
  ``{"message", "code"}`` objects, with ``errors`` for 50035 "Invalid Form Body".
- Bot routes need ``Authorization: Bot <token>`` (anything else gets 401 ``{"message":
  "401: Unauthorized", "code": 0}``, which ``login()`` turns into ``LoginFailure``); interaction
  callbacks and interaction webhooks are authorised by their token alone, as on Discord.
- Unknown routes answer 404 ``{"message": "404: Not Found", "code": 0}``; every request is
  logged in :attr:`FakeDiscord.requests` so a test can see what the bot tried.
- ``block_like_cloudflare()`` makes every request answer Cloudflare's HTML page, with no
  ``Via`` header: 429 as when it bans an address after too many invalid requests (discord.py
  raises that at once rather than waiting out a rate limit), or 403 as when a firewall rule
  denies it.
- Messages are checked like Discord checks them: 2000 characters of content, 10 embeds and the
  per-field and 6000-character embed limits, a 25-character nonce, no empty message (50006),
  at most 5 action rows of 5 buttons with custom_ids of at most 100 characters, and uploads
  whose sizes add up to more than ``attachment_size_limit`` answer 413 (40005). The bot may
  delete a channel message (Delete Message); nobody can click its buttons afterwards.
  ``enforce_nonce`` makes a repeated nonce within a few minutes return the first message
  instead of posting a second one (Discord's Create Message documentation).
- Direct messages: ``POST /users/@me/channels`` with ``{"recipient_id"}`` answers the member's
  DM channel (``type`` 1, the member in ``recipients``), the same channel for the same member
  every time. Messages sent to it are made, checked, deduplicated by ``enforce_nonce`` and
  recorded exactly as in a guild channel (in ``channel_messages[dm_channel_id]``);
  ``direct_messages(user_id)`` reads them by member. ``close_direct_messages(user_id)`` makes
  sending there answer 403 50007 "Cannot send messages to this user", as when the member
  closed their DMs; so do ``non_members``, who share no server with the bot. Opening the
  channel still succeeds, as on Discord.
- A modal callback is checked like Discord checks it (title, custom_id, 1 to 5 labels or action
  rows of text inputs, lengths) and is refused as the answer to a modal's own submit;
  ``submit_modal`` sends the MODAL_SUBMIT a member's submit makes.
- Autocomplete: ``autocomplete()`` sends the APPLICATION_COMMAND_AUTOCOMPLETE a member's typing
  makes (the command's ``data`` nested as for ``invoke_slash_command``, the focused option
  with ``"focused": true`` and its typed text as a string) for options synced with
  ``autocomplete: true`` (which Discord refuses next to ``choices``), and returns the choices
  the bot answered. Only type 8 answers it, and type 8 answers nothing else; its choices are
  checked like Discord checks them (at most 25, names of 1 to 100 characters, values of the
  option's type, strings of at most 100). A refused callback is kept in
  ``FakeInteraction.refusals`` and raised by the helper as ``CallbackRefused``.
- ``allowed_mentions`` is applied to work out who a message really pings (``mentions``,
  ``mention_roles``, ``mention_everyone`` in the message object), as Discord does.
- An interaction accepts exactly one callback, and only within 3 s of INTERACTION_CREATE;
  after that Discord answers 404 10062 "Unknown interaction", and a second callback 400 40060.
  ``with_response`` returns ``{"interaction", "resource"}`` (discord.py 2.7 always asks for it
  and parses it into ``InteractionCallbackResponse``). Followups and ``@original`` edits work
  only once the interaction was acknowledged (before that the webhook is unknown, 10015), and
  the first followup after a deferral edits the "thinking" message instead of posting a new
  one, keeping the deferral's ephemeral flag (Discord's Create Followup Message documentation).
  An expired token's webhook answers 401 50027 "Invalid Webhook Token".
- Application commands are stored on PUT with Discord's fields (ids kept stable per name and
  type across overwrites, a new ``version`` per PUT, permissions as strings) after Discord's
  validation of names, descriptions, option order, choices and lengths.
- The gateway sends HELLO, answers IDENTIFY (wrong token: close 4004) with READY and, with the
  GUILDS intent, one GUILD_CREATE per guild (``guilds``, default 1), each guild with one text
  channel; commands, interactions and messages keep to the guild they belong to (guild
  commands are per guild, an interaction carries its guild). It acknowledges heartbeats
  and replays missed dispatches on RESUME before RESUMED. With ``compress=zlib-stream`` every
  frame comes from one zlib stream per connection and ends in a Z_SYNC_FLUSH marker
  (``00 00 ff ff``), which is what discord.py's decompressor waits for.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import mimetypes
import re
import secrets
import time
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMessage, WSMsgType, web

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

DEFAULT_APPLICATION_ID = 1_234_567_890_123_456_789
DEFAULT_GUILD_ID = 1_111_111_111_111_111_111
DEFAULT_CHANNEL_ID = 1_222_222_222_222_222_222
DEFAULT_USER_ID = 1_333_333_333_333_333_333
# Owns the application and the guild; deliberately not the default invoking user, so an
# owner-only check cannot pass by accident.
OWNER_ID = 1_444_444_444_444_444_444

# Everything but Administrator, for @everyone, the invoking member and the bot's app_permissions.
PERMISSIONS = str(discord.Permissions.all().value & ~discord.Permissions(administrator=True).value)

HEARTBEAT_INTERVAL_MS = 41_250
GUILDS_INTENT = 1 << 0
INTERACTION_DEADLINE_S = 3.0
NONCE_WINDOW_S = 300.0
MAX_REQUEST_BYTES = 1 << 30
# What Cloudflare answers an address it banned (error 1015) or denied (1020), shortened.
CLOUDFLARE_PAGES = {
    429: "<!DOCTYPE html><html><head><title>Access denied | discord.com used Cloudflare to "
    "restrict access</title></head><body><h1>Error 1015</h1><h2>You are being rate limited</h2>"
    "</body></html>",
    403: "<!DOCTYPE html><html><head><title>Access denied | discord.com used Cloudflare to "
    "restrict access</title></head><body><h1>Error 1020</h1><h2>Access denied</h2></body>"
    "</html>",
}

EPHEMERAL = 1 << 6
LOADING = 1 << 7
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
APPLICATION_COMMAND_AUTOCOMPLETE = 4
MODAL_SUBMIT = 5
ACTION_ROW = 1
BUTTON = 2
TEXT_INPUT = 4
LABEL = 18
# Discord's component limits (Message Components and Modal documentation).
MAX_ACTION_ROWS = 5
MAX_ROW_BUTTONS = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
MODAL_TITLE_MAX = 45
MODAL_COMPONENTS_MAX = 5
MODAL_LABEL_MAX = 45
LABEL_DESCRIPTION_MAX = 100
TEXT_INPUT_MAX = 4000
USER_OPTION = 6
CHANNEL_OPTION = 7
ROLE_OPTION = 8
CHAT_INPUT = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
# Answers to a component (or a modal opened from one) that change the message it sat on.
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
MODAL = 9
# Option types the fake can fill from plain Python values (no "resolved" objects needed).
OPTION_VALUE_TYPES: dict[int, tuple[type, ...]] = {
    3: (str,),
    4: (int,),
    5: (bool,),
    10: (int, float),
}
# Option types Discord offers autocomplete for, and the choice values each accepts.
AUTOCOMPLETE_VALUE_TYPES: dict[int, tuple[type, ...]] = {
    3: (str,),
    4: (int,),
    10: (int, float),
}
MAX_CHOICES = 25
CHOICE_MAX = 100

FILE_FIELD = re.compile(r"files\[(\d+)\]")
COMMAND_NAME = re.compile(r"[-_'\w]{1,32}")
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


class _ApiError(Exception):
    """A Discord error object, raised by a handler and rendered by the middleware."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(message)
        self.body: JSON = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors
        self.status = status


def _form_error(path: Sequence[str | int], code: str, message: str) -> _ApiError:
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(path):
        errors = {str(key): errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def _json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _is_true(value: str | None) -> bool:
    return value is not None and value.lower() in {"1", "true"}


def _check_length(path: Sequence[str | int], text: str, low: int, high: int) -> None:
    if not low <= len(text) <= high:
        raise _form_error(
            path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length."
        )


def _check_components(payload: JSON) -> None:
    """Discord's rules for a message's action rows of buttons: at most 5 rows of at most 5
    buttons, custom_ids of 1 to 100 characters, labels of at most 80."""
    rows = payload.get("components") or []
    if len(rows) > MAX_ACTION_ROWS:
        raise _form_error(["components"], "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for number, row in enumerate(rows):
        items = row.get("components") or []
        if row.get("type") == ACTION_ROW and len(items) > MAX_ROW_BUTTONS:
            raise _form_error(
                ["components", number, "components"],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            )
        for index, item in enumerate(items):
            path: list[str | int] = ["components", number, "components", index]
            if item.get("type") != BUTTON:
                continue
            if "custom_id" in item:
                _check_length([*path, "custom_id"], str(item["custom_id"]), 1, CUSTOM_ID_MAX)
            if item.get("label") is not None:
                _check_length([*path, "label"], item["label"], 0, BUTTON_LABEL_MAX)


def _check_modal(data: JSON) -> None:
    """Discord's rules for a modal: a title of at most 45 characters, a custom_id of 1 to 100,
    1 to 5 components, each a label (text of at most 45, description of at most 100) around a
    text input or, the older way, an action row holding one; text inputs with custom_ids of
    1 to 100 and values and lengths within 4,000."""
    _check_length(["data", "title"], data.get("title") or "", 1, MODAL_TITLE_MAX)
    _check_length(["data", "custom_id"], data.get("custom_id") or "", 1, CUSTOM_ID_MAX)
    components = data.get("components") or []
    if not 1 <= len(components) <= MODAL_COMPONENTS_MAX:
        raise _form_error(
            ["data", "components"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length."
        )
    for number, holder in enumerate(components):
        path: list[str | int] = ["data", "components", number]
        if holder.get("type") == LABEL:
            _check_length([*path, "label"], holder.get("label") or "", 1, MODAL_LABEL_MAX)
            description = holder.get("description")
            if description is not None:
                _check_length([*path, "description"], description, 0, LABEL_DESCRIPTION_MAX)
            inputs = [([*path, "component"], holder.get("component") or {})]
        elif holder.get("type") == ACTION_ROW:
            inputs = [
                ([*path, "components", index], item)
                for index, item in enumerate(holder.get("components") or [])
            ]
            for input_path, item in inputs:
                _check_length([*input_path, "label"], item.get("label") or "", 1, MODAL_LABEL_MAX)
        else:
            raise _form_error(
                [*path, "type"], "UNION_TYPE_CHOICES", "Value must be one of {1, 18}."
            )
        for input_path, item in inputs:
            if item.get("type") != TEXT_INPUT:
                raise _form_error(
                    [*input_path, "type"], "UNION_TYPE_CHOICES", "Value must be one of {4}."
                )
            _check_length([*input_path, "custom_id"], item.get("custom_id") or "", 1, CUSTOM_ID_MAX)
            _check_length([*input_path, "value"], item.get("value") or "", 0, TEXT_INPUT_MAX)
            for key in ("min_length", "max_length"):
                if not 0 <= item.get(key, 0) <= TEXT_INPUT_MAX:
                    raise _form_error(
                        [*input_path, key], "NUMBER_TYPE_MAX", "int value should be <= 4000."
                    )


def _modal_inputs(modal: JSON) -> list[JSON]:
    """A modal's text inputs, whether held by labels or action rows."""
    inputs: list[JSON] = []
    for holder in modal.get("components") or []:
        if holder.get("type") == LABEL:
            inputs.append(holder["component"])
        else:
            inputs.extend(holder.get("components") or [])
    return inputs


def _modal_submit_components(modal: JSON, values: Mapping[str, str]) -> list[JSON]:
    """What Discord sends back for a modal: each holder (label or action row) as it was
    laid out, holding its text input's ``type``, ``id``, ``custom_id`` and ``value`` only.
    Component ids Discord fills in, in order, where the bot gave none."""
    next_id = 0

    def component_id(given: JSON) -> int:
        nonlocal next_id
        next_id += 1
        return int(given.get("id") or next_id)

    def submitted(text_input: JSON) -> JSON:
        return {
            "type": TEXT_INPUT,
            "id": component_id(text_input),
            "custom_id": text_input["custom_id"],
            "value": values[text_input["custom_id"]],
        }

    components: list[JSON] = []
    for holder in modal.get("components") or []:
        if holder.get("type") == LABEL:
            holder_id = component_id(holder)
            components.append(
                {"type": LABEL, "id": holder_id, "component": submitted(holder["component"])}
            )
        else:
            holder_id = component_id(holder)
            inner = [submitted(item) for item in holder.get("components") or []]
            components.append({"type": ACTION_ROW, "id": holder_id, "components": inner})
    return components


def _check_message_limits(payload: JSON) -> None:
    _check_components(payload)
    content = payload.get("content") or ""
    if len(content) > 2000:
        raise _form_error(["content"], "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    nonce = payload.get("nonce")
    if nonce is not None and len(str(nonce)) > 25:
        raise _form_error(["nonce"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        raise _form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise _form_error(
                ["embeds", index, "fields"],
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            )
        texts: list[tuple[list[str | int], str | None, int]] = [
            (["title"], embed.get("title"), 256),
            (["description"], embed.get("description"), 4096),
            (["footer", "text"], (embed.get("footer") or {}).get("text"), 2048),
            (["author", "name"], (embed.get("author") or {}).get("name"), 256),
        ]
        for number, item in enumerate(fields):
            texts.append((["fields", number, "name"], item.get("name"), 256))
            texts.append((["fields", number, "value"], item.get("value"), 1024))
        for path, text, limit in texts:
            if text is None:
                continue
            if len(text) > limit:
                raise _form_error(
                    ["embeds", index, *path],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {limit} or fewer in length.",
                )
            total += len(text)
    if total > 6000:
        raise _form_error(
            ["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )


def _check_new_message(payload: JSON, uploads: Sequence[JSON]) -> None:
    _check_message_limits(payload)
    keys = ("content", "embeds", "components", "sticker_ids", "poll")
    if not uploads and not any(payload.get(key) for key in keys):
        raise _ApiError(400, 50006, "Cannot send an empty message")


def _check_chat_input(path: list[str | int], item: JSON) -> None:
    """Discord's rules for a slash command, a subcommand or an option (they share them)."""
    name = item.get("name", "")
    if not COMMAND_NAME.fullmatch(name) or name != name.lower():
        raise _form_error([*path, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Invalid name.")
    _check_length([*path, "description"], item.get("description", ""), 1, 100)
    options = item.get("options") or []
    if len(options) > 25:
        raise _form_error([*path, "options"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer.")
    optional_seen = False
    for index, option in enumerate(options):
        option_path = [*path, "options", index]
        _check_chat_input(option_path, option)
        if option.get("type") in (1, 2):
            continue
        if not option.get("required", False):
            optional_seen = True
        elif optional_seen:
            raise _form_error(
                [*path, "options"],
                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                "Required options must be placed before non-required options",
            )
        if option.get("max_length", 0) > 6000:
            raise _form_error(
                [*option_path, "max_length"],
                "NUMBER_TYPE_MAX",
                "int value should be less than or equal to 6000.",
            )
        choices = option.get("choices") or []
        if option.get("autocomplete"):
            if option.get("type") not in AUTOCOMPLETE_VALUE_TYPES:
                raise _form_error(
                    [*option_path, "autocomplete"],
                    "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID_TYPE",
                    "Autocomplete is only available for string, integer and number options.",
                )
            if choices:
                raise _form_error(
                    [*option_path, "autocomplete"],
                    "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                    "Autocomplete cannot be set on an option that has choices.",
                )
        if len(choices) > 25:
            raise _form_error([*option_path, "choices"], "BASE_TYPE_MAX_LENGTH", "Max 25.")
        for number, choice in enumerate(choices):
            _check_length([*option_path, "choices", number, "name"], choice.get("name", ""), 1, 100)
            if isinstance(choice.get("value"), str):
                _check_length([*option_path, "choices", number, "value"], choice["value"], 1, 100)


def _check_commands(payload: object) -> list[JSON]:
    if not isinstance(payload, list) or not all(isinstance(item, dict) for item in payload):
        raise _form_error([], "BASE_TYPE_ARRAY", "Must be an array of application commands.")
    seen: set[tuple[int, str]] = set()
    for index, command in enumerate(payload):
        key = (command.get("type", CHAT_INPUT), command.get("name", ""))
        if key in seen:
            raise _form_error(
                [index, "name"],
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique ({key[1]}).",
            )
        seen.add(key)
        if key[0] == CHAT_INPUT:
            _check_chat_input([index], command)
        else:
            _check_length([index, "name"], key[1], 1, 32)
    return payload


def _option_value(definition: JSON, value: object) -> object:
    """Check a value as Discord's client does before it lets a member send the command."""
    name, option_type = definition["name"], definition["type"]
    accepted = OPTION_VALUE_TYPES.get(option_type)
    if accepted is None:
        raise ValueError(f"option {name!r} has type {option_type}, which the fake cannot fill")
    if isinstance(value, bool) is not (option_type == 5) or not isinstance(value, accepted):
        raise ValueError(f"option {name!r} (type {option_type}) cannot take {value!r}")
    choices = definition.get("choices")
    if choices and value not in [choice["value"] for choice in choices]:
        raise ValueError(f"option {name!r} has choices; {value!r} is not one of them")
    if isinstance(value, str):
        size: float = len(value)
        low, high = definition.get("min_length"), definition.get("max_length")
    else:
        assert isinstance(value, int | float)
        size = value
        low, high = definition.get("min_value"), definition.get("max_value")
    if (low is not None and size < low) or (high is not None and size > high):
        raise ValueError(f"option {name!r} must be within [{low}, {high}], got {value!r}")
    return value


def _check_autocomplete_choices(option: JSON, data: JSON) -> None:
    """Discord's rules for an autocomplete answer: at most 25 choices, names of 1 to 100
    characters, values of the focused option's type (strings of at most 100 characters)."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise _form_error(["data", "choices"], "BASE_TYPE_REQUIRED", "This field is required")
    if len(choices) > MAX_CHOICES:
        raise _form_error(
            ["data", "choices"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CHOICES} or fewer."
        )
    accepted = AUTOCOMPLETE_VALUE_TYPES[option["type"]]
    for index, choice in enumerate(choices):
        path: list[str | int] = ["data", "choices", index]
        if not isinstance(choice, dict):
            raise _form_error(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used.")
        name = choice.get("name")
        _check_length([*path, "name"], name if isinstance(name, str) else "", 1, CHOICE_MAX)
        value = choice.get("value")
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise _form_error(
                [*path, "value"],
                "APPLICATION_COMMAND_OPTION_CHOICE_VALUE_INVALID",
                f"Choice value must be of the option's type ({option['type']}).",
            )
        if isinstance(value, str):
            _check_length([*path, "value"], value, 1, CHOICE_MAX)


def _mentions(payload: JSON) -> tuple[list[int], list[str], bool]:
    """Who a message pings: the mentions in its content that ``allowed_mentions`` lets through."""
    content = payload.get("content") or ""
    allowed = payload.get("allowed_mentions")
    if allowed is None:
        parse, users, roles = {"users", "roles", "everyone"}, set(), set()
    else:
        parse = set(allowed.get("parse", []))
        users = {str(user) for user in allowed.get("users", [])}
        roles = {str(role) for role in allowed.get("roles", [])}
    pinged_users = [
        int(user)
        for user in dict.fromkeys(USER_MENTION.findall(content))
        if "users" in parse or user in users
    ]
    pinged_roles = [
        role
        for role in dict.fromkeys(ROLE_MENTION.findall(content))
        if "roles" in parse or role in roles
    ]
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    return pinged_users, pinged_roles, everyone


def _decode_frame(frame: WSMessage) -> JSON | None:
    if frame.type is not WSMsgType.TEXT:
        return None
    try:
        payload = json.loads(frame.data)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


class _Changes:
    """Lets tests wait for the fake's state to reach a condition."""

    def __init__(self, requests: list[tuple[str, str]]) -> None:
        self._condition = asyncio.Condition()
        self._requests = requests

    async def notify(self) -> None:
        async with self._condition:
            self._condition.notify_all()

    async def wait_for(self, what: str, found: Callable[[], T | None], timeout: float) -> T:
        try:
            async with asyncio.timeout(timeout), self._condition:
                while (result := found()) is None:
                    await self._condition.wait()
                return result
        except TimeoutError:
            raise TimeoutError(
                f"fake Discord: no {what} within {timeout} s; last requests: {self._requests[-8:]}"
            ) from None


class CallbackRefused(Exception):
    """The fake answered the bot's interaction callback with an error, as Discord would have;
    ``status`` and ``body`` (``{"message", "code", "errors"...}``) are what the bot got."""

    def __init__(self, refusal: JSON) -> None:
        super().__init__(f"fake Discord refused the callback: {refusal}")
        self.status: int = refusal["status"]
        self.body: JSON = refusal["body"]


class FakeInteraction:
    """One INTERACTION_CREATE the fake sent, and what the bot did with its token."""

    def __init__(
        self,
        changes: _Changes,
        responses: list[JSON],
        *,
        interaction_id: int,
        token: str,
        channel_id: int,
        user_id: int,
        created_at: float,
        guild_id: int,
        permissions: str = PERMISSIONS,
        message: JSON | None = None,
    ) -> None:
        self.id = interaction_id
        self.token = token
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        # Event-loop clock (loop.time()) when INTERACTION_CREATE was sent, when the first
        # callback request arrived (accepted or refused as too late) and when one was accepted.
        self.created_at = created_at
        self.callback_attempted_at: float | None = None
        self.responded_at: float | None = None
        # The same list as FakeDiscord.interaction_responses[token]; when each record was made.
        self.responses = responses
        self.recorded_at: list[float] = []
        self.original_message_id: str | None = None
        self.messages: dict[str, JSON] = {}
        self.type = APPLICATION_COMMAND
        # The member's permissions, and the message a component sat on, as sent to the bot.
        self.permissions = permissions
        self.message = message
        # An autocomplete interaction's focused option, as synced: what its choices must match.
        self.focused_option: JSON | None = None
        # The error bodies of callback requests the fake refused, in order, so a test sees why
        # a bot's answer never arrived (discord.py only logs errors raised in autocomplete).
        self.refusals: list[JSON] = []
        self._changes = changes

    @property
    def response_delay(self) -> float | None:
        """Seconds from INTERACTION_CREATE to the accepted callback, None before it."""
        return None if self.responded_at is None else self.responded_at - self.created_at

    def record(self, record: JSON, at: float | None = None) -> None:
        """Keep what the bot did with the token, and when (event-loop clock, default now)."""
        self.responses.append(record)
        self.recorded_at.append(asyncio.get_running_loop().time() if at is None else at)

    @property
    def shown_delay(self) -> float | None:
        """Seconds from INTERACTION_CREATE until the member saw an answer: a message (or modal)
        callback, or the followup or edit that fills a deferral's "thinking" message."""
        for record, at in zip(self.responses, self.recorded_at, strict=True):
            deferral = (
                record["kind"] == "callback"
                and record.get("type") == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
            )
            if not deferral and record["kind"] != "delete":
                return at - self.created_at
        return None

    @property
    def attempt_delay(self) -> float | None:
        """Seconds from INTERACTION_CREATE to the first callback request, even one refused
        with 10062 for coming after the deadline; None while the bot has sent none."""
        attempted = self.callback_attempted_at
        return None if attempted is None else attempted - self.created_at

    async def wait_for_response(self, timeout: float = 10) -> JSON:
        """The callback record: ``{"kind": "callback", "type", "data", "attachments", ...}``."""
        return await self.wait_for_record("callback", timeout)

    async def wait_for_callback_attempt(self, timeout: float = 10) -> JSON:
        """The accepted callback record, or :class:`CallbackRefused` with the error the fake
        answered the bot's first refused callback request."""

        def found() -> JSON | None:
            callback = next((r for r in self.responses if r["kind"] == "callback"), None)
            if callback is None and self.refusals:
                raise CallbackRefused(self.refusals[0])
            return callback

        return await self._changes.wait_for(f"callback for interaction {self.id}", found, timeout)

    async def wait_for_record(self, kind: str, timeout: float = 10) -> JSON:
        """The first record of a kind: callback, followup, edit or delete."""

        def found() -> JSON | None:
            return next((record for record in self.responses if record["kind"] == kind), None)

        return await self._changes.wait_for(f"{kind} for interaction {self.id}", found, timeout)


class _Connection:
    """One gateway websocket; frames share one zlib stream when zlib-stream was asked for."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self.session: _Session | None = None
        self._compressor = zlib.compressobj() if zlib_stream else None
        # Frames must reach the wire in the order they went through the compressor.
        self._lock = asyncio.Lock()

    async def send(self, payload: JSON) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            if self._compressor is None:
                await self.ws.send_str(text)
            else:
                compressed = self._compressor.compress(text.encode())
                await self.ws.send_bytes(compressed + self._compressor.flush(zlib.Z_SYNC_FLUSH))


@dataclass(eq=False)
class _Session:
    id: str
    # Every dispatch in order (its "s" is its index + 1), kept to replay on RESUME.
    sent: list[JSON] = field(default_factory=list)
    connection: _Connection | None = None


class FakeDiscord:
    """Discord's REST API v10 and gateway for one application and member, and ``guilds`` guilds
    (default 1) with one text channel each.

    The first guild is ``guild_id`` with ``channel_id``; more guilds get the next ids
    (``guild_id + n`` with channel ``channel_id + n``), all listed in ``guild_ids`` with their
    channel in ``guild_channels``. Roles and member roles apply in every guild.

    What the bot did, for assertions:

    - ``requests``: every ``(method, path)`` that reached the server, unknown routes included;
      paths are as sent (``/api/v10/...``, ``/gateway``).
    - ``commands``: the commands of the last PUT, as Discord answered it; ``global_commands``
      and ``guild_commands[guild_id]`` keep each scope.
    - ``channel_messages[channel_id]``: one record per message posted: the JSON payload
      (``content``, ``embeds``, ``allowed_mentions``, ``nonce``, ``enforce_nonce``...) with
      ``attachments`` replaced by the uploads ``{"filename", "content_type", "data"}`` and
      ``message`` holding the message object returned (who it pinged is in ``mentions``).
    - ``interaction_responses[token]``: the same kind of records with a ``kind``: ``callback``
      (payload ``type`` and ``data``), ``followup``, ``edit`` (``@original`` or a followup) and
      ``delete``; ``FakeInteraction.responses`` is the same list.
    - ``deleted_message_ids``: the ids of channel messages the bot deleted; their records stay
      in ``channel_messages``, but nobody can click their buttons any more.
    - ``direct_message_channels[user_id]``: the id of the DM channel the bot opened with a
      member; its messages are recorded in ``channel_messages`` under that id like any other
      channel's, and ``direct_messages(user_id)`` returns them (``[]`` before any).
    """

    def __init__(
        self,
        *,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_user_id: int = DEFAULT_APPLICATION_ID,
        guild_id: int = DEFAULT_GUILD_ID,
        channel_id: int = DEFAULT_CHANNEL_ID,
        user_id: int = DEFAULT_USER_ID,
        attachment_size_limit: int = 10 * 1024 * 1024,
        interaction_deadline: float = INTERACTION_DEADLINE_S,
        guilds: int = 1,
    ) -> None:
        if guilds < 1:
            raise ValueError("the fake needs at least one guild")
        self.application_id = application_id
        self.bot_user_id = bot_user_id
        self.guild_id = guild_id
        self.channel_id = channel_id
        # Guild id -> its text channel, in order; the first is guild_id with channel_id.
        self.guild_channels: dict[int, int] = {guild_id + n: channel_id + n for n in range(guilds)}
        self._channel_guilds = {channel: guild for guild, channel in self.guild_channels.items()}
        self.user_id = user_id
        self.attachment_size_limit = attachment_size_limit
        self.interaction_deadline = interaction_deadline
        # Shaped like a real bot token: base64 of the bot's id, a timestamp part and an HMAC.
        user_part = base64.urlsafe_b64encode(str(bot_user_id).encode()).decode().rstrip("=")
        self.token = f"{user_part}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(27)}"

        self.requests: list[tuple[str, str]] = []
        self.commands: list[JSON] = []
        self.global_commands: list[JSON] = []
        self.guild_commands: dict[int, list[JSON]] = {}
        self.channel_messages: dict[int, list[JSON]] = defaultdict(list)
        self.interaction_responses: dict[str, list[JSON]] = defaultdict(list)
        self.deleted_message_ids: set[int] = set()
        self.direct_message_channels: dict[int, int] = {}

        self._changes = _Changes(self.requests)
        self._command_puts = 0
        self._ready_count = 0
        self._interactions: dict[str, FakeInteraction] = {}
        # Guild roles besides @everyone, and which members hold them.
        self.roles: dict[int, str] = {}
        self.member_roles: dict[int, list[int]] = defaultdict(list)
        # Users a member may name in a user option although they are not in the guild; sharing
        # no server with the bot, they cannot get its direct messages (50007).
        self.non_members: set[int] = set()
        self._deleted_channels: set[int] = set()
        self._forbidden_channels: set[int] = set()
        self._archived_threads: set[int] = set()
        # DM channel -> its member, and the members whose DMs are closed to the bot.
        self._dm_recipients: dict[int, int] = {}
        self._closed_direct_messages: set[int] = set()
        self._expired_tokens: set[str] = set()
        self._cloudflare_status: int | None = None
        self._nonces: dict[tuple[int, str], tuple[float, JSON]] = {}
        self._sessions: dict[str, _Session] = {}
        self._session: _Session | None = None
        self._connections: set[_Connection] = set()
        self._last_snowflake = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on 127.0.0.1 on a free port."""
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_REQUEST_BYTES)
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving. Close the bots first: an open gateway gets 1001 and would reconnect."""
        for connection in list(self._connections):
            await connection.ws.close(code=1001, message=b"fake Discord is shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeDiscord.start() has not run")
        return f"http://127.0.0.1:{self._port}"

    @property
    def gateway_url(self) -> str:
        return f"{self.base_url.replace('http://', 'ws://', 1)}/gateway"

    @property
    def guild_ids(self) -> list[int]:
        return list(self.guild_channels)

    @property
    def channel_message_count(self) -> int:
        """Messages posted in all channels together, direct message channels included."""
        return sum(len(messages) for messages in self.channel_messages.values())

    def interactions(self) -> list[FakeInteraction]:
        """Every interaction sent so far, oldest first."""
        return list(self._interactions.values())

    # -- what tests drive and wait for -------------------------------------------------------

    async def wait_for_commands(self, timeout: float = 10) -> list[JSON]:
        return await self._changes.wait_for(
            "application command PUT",
            lambda: self.commands if self._command_puts else None,
            timeout,
        )

    async def wait_until_ready(self, timeout: float = 10) -> None:
        await self._changes.wait_for(
            "IDENTIFY answered with READY", lambda: True if self._ready_count else None, timeout
        )

    async def wait_for_channel_message(
        self, channel_id: int | None = None, *, count: int = 1, timeout: float = 10
    ) -> list[JSON]:
        """All messages recorded in the channel, once there are at least ``count``."""
        channel = self.channel_id if channel_id is None else channel_id

        def found() -> list[JSON] | None:
            messages = self.channel_messages.get(channel, [])
            return list(messages) if len(messages) >= count else None

        return await self._changes.wait_for(f"{count} message(s) in {channel}", found, timeout)

    def direct_messages(self, user_id: int) -> list[JSON]:
        """The records of the messages the bot sent to the member's DM channel, oldest first
        (the same records as in ``channel_messages``)."""
        channel = self.direct_message_channels.get(user_id)
        return [] if channel is None else list(self.channel_messages.get(channel, []))

    async def wait_for_direct_message(
        self, user_id: int | None = None, *, count: int = 1, timeout: float = 10
    ) -> list[JSON]:
        """All direct messages to the member (default: the fake's member), once there are at
        least ``count``."""
        member = self.user_id if user_id is None else user_id

        def found() -> list[JSON] | None:
            messages = self.direct_messages(member)
            return messages if len(messages) >= count else None

        return await self._changes.wait_for(
            f"{count} direct message(s) to {member}", found, timeout
        )

    async def wait_for_followup(self, interaction_token: str, timeout: float = 10) -> JSON:
        """The first followup record posted with the token."""
        return await self._interactions[interaction_token].wait_for_record("followup", timeout)

    async def wait_until(
        self, what: str, condition: Callable[[], bool], timeout: float = 10
    ) -> None:
        """Return once ``condition()`` holds; it is checked after every request that changes
        the fake's state (a callback, a message, a command PUT, a READY). ``what`` names the
        condition in the TimeoutError."""
        await self._changes.wait_for(what, lambda: True if condition() else None, timeout)

    def delete_channel(self, channel_id: int) -> None:
        self._deleted_channels.add(channel_id)

    def forbid_channel(self, channel_id: int) -> None:
        self._forbidden_channels.add(channel_id)

    def archive_thread(self, channel_id: int) -> None:
        """Posting in the channel answers 400 50083, as in a thread that has been archived."""
        self._archived_threads.add(channel_id)

    def close_direct_messages(self, user_id: int) -> None:
        """Sending to the member's DM channel answers 403 50007 "Cannot send messages to this
        user" (DMs closed, or no server shared with the bot); opening the channel still works."""
        self._closed_direct_messages.add(user_id)

    def open_direct_messages(self, user_id: int) -> None:
        """The member accepts direct messages from the bot again."""
        self._closed_direct_messages.discard(user_id)

    def block_like_cloudflare(self, status: int = 429) -> None:
        self._cloudflare_status = status

    def restore_channel(self, channel_id: int) -> None:
        """The channel works again, as after an admin gives the bot back its permissions."""
        self._deleted_channels.discard(channel_id)
        self._forbidden_channels.discard(channel_id)
        self._archived_threads.discard(channel_id)

    def expire_interaction_token(self, token: str) -> None:
        """The token's interaction webhook answers 401 50027, as after its 15 minutes."""
        self._expired_tokens.add(token)

    async def invoke_slash_command(
        self,
        name: str,
        options: Mapping[str, object] | None = None,
        *,
        user_id: int | None = None,
        channel_id: int | None = None,
        permissions: str = PERMISSIONS,
        guild_id: int | None = None,
    ) -> FakeInteraction:
        """Send INTERACTION_CREATE for a synced slash command, as a member using it would.

        ``name`` may name a subcommand after its command (``"imagine-admin grant"``), or after
        its command and subcommand group (``"imagine-admin blocklist add"``). User, role and
        channel options take ids and come with the ``resolved`` objects Discord sends. Values are
        checked against the synced option definitions the way Discord's client checks them
        (unknown or missing required options, choices, ranges) and raise ``ValueError`` when a
        member could not have sent them. ``permissions`` are the invoking member's.
        ``guild_id`` (default: the first guild) is where the member is; the channel defaults
        to that guild's text channel.
        """
        guild = self._known_guild(guild_id, channel_id)
        data = self._chat_input_data(
            name,
            guild,
            lambda definitions, resolved: self._fill_options(name, definitions, options, resolved),
        )
        return await self._send_interaction(
            APPLICATION_COMMAND,
            data,
            guild_id=guild,
            user_id=user_id,
            channel_id=channel_id,
            permissions=permissions,
        )

    async def autocomplete(
        self,
        name: str,
        options: Mapping[str, object] | None = None,
        *,
        focused: str,
        user_id: int | None = None,
        channel_id: int | None = None,
        permissions: str = PERMISSIONS,
        guild_id: int | None = None,
        timeout: float = 10,
    ) -> list[JSON]:
        """A member types in option ``focused`` of a synced slash command: send the
        APPLICATION_COMMAND_AUTOCOMPLETE Discord sends and return the ``choices`` the bot
        answered (``[{"name", "value"}, ...]``).

        ``name``, ``options`` and the keywords are as for :meth:`invoke_slash_command`.
        ``options[focused]`` is the text typed so far (default ``""``); Discord sends it as a
        string, unchecked, even for integer and number options, with ``"focused": true``.
        Options already filled are checked and sent as usual, but required ones may still be
        missing, as they may while a member types. The focused option must have been synced
        with ``autocomplete: true`` (``ValueError`` otherwise: Discord would not ask the bot).
        The answer is checked as Discord checks it; a refused one raises
        :class:`CallbackRefused`, a missing one ``TimeoutError`` after ``timeout`` seconds.
        """
        guild = self._known_guild(guild_id, channel_id)
        focused_option: list[JSON] = []

        def fill(definitions: Sequence[JSON], resolved: JSON) -> list[JSON]:
            given = dict(options or {})
            typed = given.pop(focused, "")
            definition = next((d for d in definitions if d["name"] == focused), None)
            if definition is None:
                known = sorted(d["name"] for d in definitions)
                raise ValueError(f"/{name} has no option {focused!r}; it has {known}")
            if not definition.get("autocomplete"):
                raise ValueError(f"option {focused!r} of /{name} was not synced with autocomplete")
            if not isinstance(typed, str):
                raise ValueError(f"the focused option {focused!r} takes typed text, not {typed!r}")
            focused_option.append(definition)
            filled = self._fill_options(name, definitions, given, resolved, partial=True)
            option = {"name": focused, "type": definition["type"], "value": typed, "focused": True}
            order = [d["name"] for d in definitions]
            return sorted([*filled, option], key=lambda item: order.index(item["name"]))

        data = self._chat_input_data(name, guild, fill)
        interaction = await self._send_interaction(
            APPLICATION_COMMAND_AUTOCOMPLETE,
            data,
            guild_id=guild,
            user_id=user_id,
            channel_id=channel_id,
            permissions=permissions,
            focused_option=focused_option[0],
        )
        callback = await interaction.wait_for_callback_attempt(timeout)
        choices: list[JSON] = callback["data"]["choices"]
        return choices

    async def click_button(
        self,
        custom_id: str,
        message: JSON,
        *,
        user_id: int | None = None,
        permissions: str = PERMISSIONS,
    ) -> FakeInteraction:
        """A member presses the button ``custom_id`` on ``message`` (MESSAGE_COMPONENT)."""
        buttons = [
            component["custom_id"]
            for row in message.get("components") or []
            for component in row.get("components") or []
            if component.get("type") == BUTTON
        ]
        if custom_id not in buttons:
            raise ValueError(f"message has no button {custom_id!r}; it has {buttons}")
        if int(message["id"]) in self.deleted_message_ids:
            raise ValueError(f"message {message['id']} was deleted; nobody can click it")
        channel_id = int(message["channel_id"])
        return await self._send_interaction(
            MESSAGE_COMPONENT,
            {"custom_id": custom_id, "component_type": BUTTON},
            guild_id=self._channel_guilds.get(channel_id, self.guild_id),
            user_id=user_id,
            channel_id=channel_id,
            permissions=permissions,
            message=message,
        )

    async def submit_modal(
        self, opened_by: FakeInteraction, values: Mapping[str, str] | None = None
    ) -> FakeInteraction:
        """The member who got the modal ``opened_by``'s callback showed submits it
        (MODAL_SUBMIT), with ``values`` typed over the prefilled ones by text input custom_id.

        The submit carries the modal's custom_id and each text input's value in the
        component that held it, and the message of the button that opened the modal, as
        Discord sends them. Values are checked as Discord's client checks them before it lets
        a member submit (unknown inputs, a required one left empty, the lengths) and raise
        ``ValueError`` when a member could not have sent them.
        """
        modal = next(
            (
                record["data"]
                for record in opened_by.responses
                if record["kind"] == "callback" and record.get("type") == MODAL
            ),
            None,
        )
        if modal is None:
            raise ValueError(f"interaction {opened_by.id} was not answered with a modal")
        inputs = {item["custom_id"]: item for item in _modal_inputs(modal)}
        given = dict(values or {})
        if unknown := sorted(set(given) - set(inputs)):
            raise ValueError(f"the modal has no input(s) {unknown}; it has {sorted(inputs)}")
        filled: dict[str, str] = {}
        for custom_id, item in inputs.items():
            value = given.get(custom_id, item.get("value") or "")
            low = item.get("min_length", 0)
            high = item.get("max_length", TEXT_INPUT_MAX)
            if item.get("required", True) and not value:
                raise ValueError(f"input {custom_id!r} is required")
            if value and not low <= len(value) <= high:
                raise ValueError(f"input {custom_id!r} takes {low} to {high} characters")
            filled[custom_id] = value
        data = {
            "custom_id": modal["custom_id"],
            "components": _modal_submit_components(modal, filled),
        }
        return await self._send_interaction(
            MODAL_SUBMIT,
            data,
            guild_id=opened_by.guild_id,
            user_id=opened_by.user_id,
            channel_id=opened_by.channel_id,
            permissions=opened_by.permissions,
            message=opened_by.message,
        )

    def _known_guild(self, guild_id: int | None, channel_id: int | None) -> int:
        """The guild asked for, else the one of a known channel, else the first guild."""
        if guild_id is None:
            return self._channel_guilds.get(channel_id or 0, self.guild_id)
        if guild_id not in self.guild_channels:
            raise ValueError(f"guild {guild_id} is not one of the fake's {self.guild_ids}")
        return guild_id

    def _chat_input_data(
        self,
        name: str,
        guild_id: int,
        fill: Callable[[Sequence[JSON], JSON], list[JSON]],
    ) -> JSON:
        """The interaction ``data`` of a synced slash command, as Discord sends it to invoke or
        to autocomplete it: ``name`` may name a subcommand after its command, or after its
        command and subcommand group, and the options of what it names are nested the same
        way. ``fill(definitions, resolved)`` makes those options from their synced definitions,
        adding to ``resolved`` the objects they refer to."""
        command_name, _, subcommand = name.partition(" ")
        command = self._find_command(command_name, guild_id)
        data: JSON = {"id": command["id"], "name": command["name"], "type": command["type"]}
        resolved: JSON = {}
        definitions = command.get("options") or []
        group_name, _, in_group = subcommand.partition(" ")
        if in_group:
            group = next(
                (d for d in definitions if d["name"] == group_name and d["type"] == 2), None
            )
            if group is None:
                raise ValueError(f"/{command_name} has no subcommand group {group_name!r}")
            sub = next(
                (d for d in group.get("options") or [] if d["name"] == in_group and d["type"] == 1),
                None,
            )
            if sub is None:
                raise ValueError(f"/{command_name} {group_name} has no subcommand {in_group!r}")
            filled = fill(sub.get("options") or [], resolved)
            data["options"] = [
                {
                    "name": group_name,
                    "type": 2,
                    "options": [{"name": in_group, "type": 1, "options": filled}],
                }
            ]
        elif subcommand:
            sub = next((d for d in definitions if d["name"] == subcommand and d["type"] == 1), None)
            if sub is None:
                raise ValueError(f"/{command_name} has no subcommand {subcommand!r}")
            filled = fill(sub.get("options") or [], resolved)
            data["options"] = [{"name": subcommand, "type": 1, "options": filled}]
        else:
            filled = fill(definitions, resolved)
            if filled:
                data["options"] = filled
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    def _fill_options(
        self,
        name: str,
        definitions: Sequence[JSON],
        options: Mapping[str, object] | None,
        resolved: JSON,
        *,
        partial: bool = False,
    ) -> list[JSON]:
        """The options a member filled, checked; ``partial`` while they are still typing
        (autocomplete), when required options may be missing."""
        given = dict(options or {})
        known = {definition["name"] for definition in definitions}
        if unknown := sorted(set(given) - known):
            raise ValueError(f"/{name} has no option(s) {unknown}; it has {sorted(known)}")
        filled: list[JSON] = []
        for definition in definitions:
            if definition["name"] in given:
                value = given[definition["name"]]
                if definition["type"] in (USER_OPTION, ROLE_OPTION):
                    value = self._resolve(definition, value, resolved)
                elif definition["type"] == CHANNEL_OPTION:
                    value = self._resolve_channel(definition, value, resolved)
                else:
                    value = _option_value(definition, value)
                filled.append(
                    {"name": definition["name"], "type": definition["type"], "value": value}
                )
            elif definition.get("required") and not partial:
                raise ValueError(f"/{name} needs option {definition['name']!r}")
        return filled

    def _resolve(self, definition: JSON, value: object, resolved: JSON) -> str:
        """A user or role option: the id as a string, with the objects in ``resolved``."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"option {definition['name']!r} takes an id, not {value!r}")
        if definition["type"] == ROLE_OPTION:
            if value not in self.roles:
                raise ValueError(f"role {value} does not exist in the guild")
            resolved.setdefault("roles", {})[str(value)] = self._role(value, self.roles[value])
            return str(value)
        resolved.setdefault("users", {})[str(value)] = self._user(value)
        if value not in self.non_members:
            member = self._member(value)
            del member["user"]
            resolved.setdefault("members", {})[str(value)] = {**member, "permissions": "0"}
        return str(value)

    def _resolve_channel(self, definition: JSON, value: object, resolved: JSON) -> str:
        """A channel option: the id as a string, with the partial channel (and the invoking
        member's permissions in it) in ``resolved.channels``, as Discord sends it. The fake's
        channels are all text channels, offered only where ``channel_types`` allows them."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"option {definition['name']!r} takes a channel id, not {value!r}")
        types = definition.get("channel_types")
        if types and 0 not in types:
            raise ValueError(f"option {definition['name']!r} takes channels of types {types}")
        guild_id = self._channel_guilds.get(value, self.guild_id)
        channel = self._channel(value, guild_id)
        resolved.setdefault("channels", {})[str(value)] = {
            "id": channel["id"],
            "type": channel["type"],
            "name": channel["name"],
            "parent_id": channel["parent_id"],
            "permissions": PERMISSIONS,
        }
        return str(value)

    async def _send_interaction(
        self,
        interaction_type: int,
        data: JSON,
        *,
        guild_id: int,
        user_id: int | None,
        channel_id: int | None,
        permissions: str,
        message: JSON | None = None,
        focused_option: JSON | None = None,
    ) -> FakeInteraction:
        session = self._session
        if session is None:
            raise RuntimeError("no client has identified on the fake gateway")
        token = f"aW50ZXJhY3Rpb246{secrets.token_urlsafe(48)}"
        interaction = FakeInteraction(
            self._changes,
            self.interaction_responses[token],
            interaction_id=self._snowflake(),
            token=token,
            guild_id=guild_id,
            channel_id=self.guild_channels[guild_id] if channel_id is None else channel_id,
            user_id=self.user_id if user_id is None else user_id,
            created_at=asyncio.get_running_loop().time(),
            permissions=permissions,
            message=message,
        )
        interaction.type = interaction_type
        interaction.focused_option = focused_option
        self._interactions[token] = interaction
        payload = self._interaction_create(interaction, data, interaction_type, permissions)
        if message is not None:
            payload["message"] = message
        await self._dispatch(session, "INTERACTION_CREATE", payload)
        return interaction

    async def disconnect_gateway(self) -> None:
        """Drop the client's websocket with 4000, as a gateway node restart does.

        discord.py then RESUMEs; dispatches made meanwhile are replayed on the new connection.
        """
        session = self._session
        connection = session.connection if session is not None else None
        if session is None or connection is None:
            raise RuntimeError("no client is connected to the fake gateway")
        session.connection = None
        await connection.ws.close(code=4000, message=b"Unknown error.")

    # -- HTTP plumbing -----------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        api = API_PREFIX
        app = r"{application_id:\d+}"
        webhook = f"{api}/webhooks/{app}/{{token:[^/]+}}"
        return [
            web.get("/gateway", self._gateway),
            web.get(f"{api}/users/@me", self._authed(self._get_me)),
            web.get(f"{api}/oauth2/applications/@me", self._authed(self._get_application)),
            web.post(f"{api}/users/@me/channels", self._authed(self._create_dm)),
            web.get(f"{api}/applications/{app}/commands", self._authed(self._get_commands)),
            web.put(f"{api}/applications/{app}/commands", self._authed(self._put_commands)),
            web.get(
                rf"{api}/applications/{app}/guilds/{{guild_id:\d+}}/commands",
                self._authed(self._get_commands),
            ),
            web.put(
                rf"{api}/applications/{app}/guilds/{{guild_id:\d+}}/commands",
                self._authed(self._put_commands),
            ),
            web.post(
                rf"{api}/channels/{{channel_id:\d+}}/messages",
                self._authed(self._post_channel_message),
            ),
            web.delete(
                rf"{api}/channels/{{channel_id:\d+}}/messages/{{message_id:\d+}}",
                self._authed(self._delete_channel_message),
            ),
            web.post(
                rf"{api}/interactions/{{interaction_id:\d+}}/{{token:[^/]+}}/callback",
                self._post_callback,
            ),
            web.post(webhook, self._post_followup),
            web.get(rf"{webhook}/messages/{{message_id:@original|\d+}}", self._get_webhook_message),
            web.patch(
                rf"{webhook}/messages/{{message_id:@original|\d+}}", self._patch_webhook_message
            ),
            web.delete(
                rf"{webhook}/messages/{{message_id:@original|\d+}}", self._delete_webhook_message
            ),
        ]

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self._cloudflare_status is not None:
            page = CLOUDFLARE_PAGES[self._cloudflare_status]
            return web.Response(status=self._cloudflare_status, text=page, content_type="text/html")
        try:
            return await handler(request)
        except _ApiError as error:
            return _json_response(error.body, error.status)
        except web.HTTPNotFound:
            return _json_response({"message": "404: Not Found", "code": 0}, 404)
        except web.HTTPMethodNotAllowed:
            return _json_response({"message": "405: Method Not Allowed", "code": 0}, 405)

    def _authed(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != f"Bot {self.token}":
                raise _ApiError(401, 0, "401: Unauthorized")
            return await handler(request)

        return checked

    async def _read_message_body(self, request: web.Request) -> tuple[JSON, list[JSON]]:
        """The JSON payload and the uploaded files, from JSON or multipart (``payload_json``
        plus ``files[n]`` parts, as discord.py's ``handle_message_parameters`` sends them)."""
        uploads: list[tuple[int, JSON]] = []
        try:
            if request.content_type == "multipart/form-data":
                form = await request.post()
                raw = form.get("payload_json")
                payload = json.loads(raw) if isinstance(raw, str) else {}
                for name, part in form.items():
                    match = FILE_FIELD.fullmatch(name)
                    if match and isinstance(part, web.FileField):
                        upload = {
                            "filename": part.filename,
                            "content_type": part.content_type,
                            "data": part.file.read(),
                        }
                        uploads.append((int(match.group(1)), upload))
            else:
                payload = await request.json() if request.can_read_body else {}
        except ValueError:
            raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None
        if not isinstance(payload, dict):
            raise _form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        # The attachment entries name the files: ``{"id": n, "filename": ...}`` for files[n].
        names = {
            str(entry.get("id")): entry["filename"]
            for entry in payload.get("attachments") or []
            if "filename" in entry
        }
        files = [
            {**upload, "filename": names.get(str(index), upload["filename"])}
            for index, upload in sorted(uploads, key=lambda item: item[0])
        ]
        if sum(len(upload["data"]) for upload in files) > self.attachment_size_limit:
            raise _ApiError(413, 40005, "Request entity too large")
        return payload, files

    # -- objects -----------------------------------------------------------------------------

    def _snowflake(self) -> int:
        timestamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_snowflake = max(timestamp, self._last_snowflake + 1)
        return self._last_snowflake

    def _user(self, user_id: int) -> JSON:
        user: JSON = {
            "id": str(user_id),
            "username": f"user{user_id}",
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if user_id == self.bot_user_id:
            user.update(username="fake-bot", bot=True)
        return user

    def _role(self, role_id: int, name: str) -> JSON:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 1,
            "permissions": "0",
            "managed": False,
            "mentionable": True,
            "flags": 0,
        }

    def _member(self, user_id: int) -> JSON:
        return {
            "user": self._user(user_id),
            "roles": [str(role_id) for role_id in self.member_roles.get(user_id, [])],
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "joined_at": _now_iso(),
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def _channel(self, channel_id: int, guild_id: int) -> JSON:
        main = self.guild_channels.get(guild_id) == channel_id
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(guild_id),
            "name": "general" if main else f"channel-{channel_id}",
            "position": 0,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _dm_channel(self, channel_id: int, user_id: int) -> JSON:
        """A DM channel object as Create DM answers it."""
        posted = self.channel_messages.get(channel_id)
        return {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": posted[-1]["message"]["id"] if posted else None,
            "flags": 0,
            "recipients": [self._user(user_id)],
        }

    def _guild_create(self, guild_id: int) -> JSON:
        channel_id = self.guild_channels[guild_id]
        number = self.guild_ids.index(guild_id)
        everyone = {
            "id": str(guild_id),
            "name": "@everyone",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 0,
            "permissions": PERMISSIONS,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(guild_id),
            "name": "Fake Guild" if number == 0 else f"Fake Guild {number + 1}",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(OWNER_ID),
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": str(channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "preferred_locale": "en-US",
            "max_members": 500_000,
            "features": [],
            "roles": [everyone, *(self._role(rid, name) for rid, name in self.roles.items())],
            "emojis": [],
            "stickers": [],
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": 2,
            "members": [self._member(self.bot_user_id)],
            "channels": [self._channel(channel_id, guild_id)],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _message(
        self,
        channel_id: int,
        payload: JSON,
        uploads: Sequence[JSON],
        *,
        interaction: FakeInteraction | None = None,
        message_type: int = 0,
        extra_flags: int = 0,
    ) -> JSON:
        users, roles, everyone = _mentions(payload)
        message: JSON = {
            "id": str(self._snowflake()),
            "channel_id": str(channel_id),
            "author": self._user(self.bot_user_id),
            "content": payload.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(payload.get("tts", False)),
            "mention_everyone": everyone,
            "mentions": [self._user(user) for user in users],
            "mention_roles": roles,
            "attachments": [self._attachment(channel_id, upload) for upload in uploads],
            "embeds": [{"type": "rich", **embed} for embed in payload.get("embeds") or []],
            "pinned": False,
            "type": message_type,
            "flags": (payload.get("flags") or 0) | extra_flags,
            "components": payload.get("components") or [],
        }
        if payload.get("nonce") is not None:
            message["nonce"] = payload["nonce"]
        if interaction is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": APPLICATION_COMMAND,
                "user": self._user(interaction.user_id),
                "authorizing_integration_owners": {"0": str(interaction.guild_id)},
            }
        return message

    def _attachment(self, channel_id: int, upload: JSON) -> JSON:
        attachment_id = self._snowflake()
        filename = upload["filename"]
        # Shaped like Discord's CDN URLs; the fake does not serve them.
        url = f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}"
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(upload["data"]),
            "url": url,
            "proxy_url": url,
            "content_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
        }

    def _interaction_create(
        self, interaction: FakeInteraction, data: JSON, interaction_type: int, permissions: str
    ) -> JSON:
        return {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "guild": {"id": str(interaction.guild_id), "locale": "en-US", "features": []},
            "guild_id": str(interaction.guild_id),
            "guild_locale": "en-US",
            "channel": {
                **self._channel(interaction.channel_id, interaction.guild_id),
                "permissions": PERMISSIONS,
            },
            "channel_id": str(interaction.channel_id),
            "member": {**self._member(interaction.user_id), "permissions": permissions},
            "token": interaction.token,
            "version": 1,
            "app_permissions": PERMISSIONS,
            "locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(interaction.guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }

    def _find_command(self, name: str, guild_id: int) -> JSON:
        candidates = [*self.guild_commands.get(guild_id, []), *self.global_commands]
        for command in candidates:
            if command["name"] == name and command["type"] == CHAT_INPUT:
                return command
        synced = sorted(command["name"] for command in candidates)
        raise ValueError(f"/{name} is not a synced slash command; synced: {synced}")

    # -- REST handlers -----------------------------------------------------------------------

    async def _get_me(self, request: web.Request) -> web.StreamResponse:
        me = self._user(self.bot_user_id)
        me.update(verified=True, mfa_enabled=False, locale="en-US", email=None)
        return _json_response(me)

    async def _get_application(self, request: web.Request) -> web.StreamResponse:
        return _json_response(
            {
                "id": str(self.application_id),
                "name": "fake-bot",
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "hook": True,
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": 0,
                "owner": self._user(OWNER_ID),
                "team": None,
                "bot": self._user(self.bot_user_id),
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "tags": [],
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    def _command_scope(self, request: web.Request) -> int | None:
        """The guild id of a guild-command route (None for global), after Discord's checks."""
        if int(request.match_info["application_id"]) != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        guild = request.match_info.get("guild_id")
        if guild is not None and int(guild) not in self.guild_channels:
            raise _ApiError(403, 50001, "Missing Access")
        return None if guild is None else int(guild)

    async def _get_commands(self, request: web.Request) -> web.StreamResponse:
        guild_id = self._command_scope(request)
        if guild_id is None:
            return _json_response(self.global_commands)
        return _json_response(self.guild_commands.get(guild_id, []))

    async def _put_commands(self, request: web.Request) -> web.StreamResponse:
        guild_id = self._command_scope(request)
        try:
            payload = _check_commands(await request.json())
        except ValueError:
            raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None
        previous = self.global_commands if guild_id is None else self.guild_commands.get(guild_id)
        ids = {(command["type"], command["name"]): command["id"] for command in previous or []}
        version = str(self._snowflake())
        stored: list[JSON] = []
        for command in payload:
            command_type = command.get("type", CHAT_INPUT)
            permissions = command.get("default_member_permissions")
            entry: JSON = {
                "id": ids.get((command_type, command["name"])) or str(self._snowflake()),
                "application_id": str(self.application_id),
                "version": version,
                "type": command_type,
                "name": command["name"],
                "name_localizations": command.get("name_localizations"),
                "description": command.get("description", ""),
                "description_localizations": command.get("description_localizations"),
                "default_member_permissions": None if permissions is None else str(permissions),
                "dm_permission": command.get("dm_permission", True),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types") or [0],
                "nsfw": command.get("nsfw", False),
            }
            if command_type == CHAT_INPUT:
                entry["options"] = command.get("options") or []
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        if guild_id is None:
            self.global_commands = stored
        else:
            self.guild_commands[guild_id] = stored
        self.commands = stored
        self._command_puts += 1
        await self._changes.notify()
        return _json_response(stored)

    async def _create_dm(self, request: web.Request) -> web.StreamResponse:
        """Create DM: the member's DM channel, opened once and the same one ever after."""
        try:
            payload = await request.json()
        except ValueError:
            raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None
        if not isinstance(payload, dict):
            raise _form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used.")
        recipient = payload.get("recipient_id")
        if recipient is None:
            raise _form_error(["recipient_id"], "BASE_TYPE_REQUIRED", "This field is required")
        if isinstance(recipient, bool) or not str(recipient).isdigit():
            raise _form_error(
                ["recipient_id"], "NUMBER_TYPE_COERCE", f'Value "{recipient}" is not snowflake.'
            )
        user_id = int(recipient)
        channel_id = self.direct_message_channels.get(user_id)
        if channel_id is None:
            channel_id = self._snowflake()
            self.direct_message_channels[user_id] = channel_id
            self._dm_recipients[channel_id] = user_id
        await self._changes.notify()
        return _json_response(self._dm_channel(channel_id, user_id))

    async def _post_channel_message(self, request: web.Request) -> web.StreamResponse:
        channel_id = int(request.match_info["channel_id"])
        if channel_id in self._deleted_channels:
            raise _ApiError(404, 10003, "Unknown Channel")
        if channel_id in self._forbidden_channels:
            raise _ApiError(403, 50013, "Missing Permissions")
        if channel_id in self._archived_threads:
            raise _ApiError(400, 50083, "Operation cannot be performed on an archived thread.")
        recipient = self._dm_recipients.get(channel_id)
        if recipient in self._closed_direct_messages or recipient in self.non_members:
            # Discord: DMs closed to the bot, or no server shared with it.
            raise _ApiError(403, 50007, "Cannot send messages to this user")
        payload, uploads = await self._read_message_body(request)
        _check_new_message(payload, uploads)
        now = asyncio.get_running_loop().time()
        nonce_key = None
        if payload.get("enforce_nonce") and payload.get("nonce") is not None:
            nonce_key = (channel_id, str(payload["nonce"]))
            earlier = self._nonces.get(nonce_key)
            if earlier is not None and now - earlier[0] < NONCE_WINDOW_S:
                return _json_response(earlier[1])
        message = self._message(channel_id, payload, uploads)
        if nonce_key is not None:
            self._nonces[nonce_key] = (now, message)
        record = {**payload, "attachments": uploads, "message": copy.deepcopy(message)}
        self.channel_messages[channel_id].append(record)
        await self._changes.notify()
        return _json_response(message)

    async def _delete_channel_message(self, request: web.Request) -> web.StreamResponse:
        """Delete Message: the bot's own messages need no permission (all the fake's are)."""
        channel_id = int(request.match_info["channel_id"])
        if channel_id in self._deleted_channels:
            raise _ApiError(404, 10003, "Unknown Channel")
        if channel_id in self._forbidden_channels:
            raise _ApiError(403, 50013, "Missing Permissions")
        message_id = int(request.match_info["message_id"])
        posted = {int(record["message"]["id"]) for record in self.channel_messages[channel_id]}
        if message_id not in posted or message_id in self.deleted_message_ids:
            raise _ApiError(404, 10008, "Unknown Message")
        self.deleted_message_ids.add(message_id)
        await self._changes.notify()
        return web.Response(status=204)

    async def _post_callback(self, request: web.Request) -> web.StreamResponse:
        interaction = self._interactions.get(request.match_info["token"])
        now = asyncio.get_running_loop().time()
        if interaction is None or interaction.id != int(request.match_info["interaction_id"]):
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.callback_attempted_at is None:
            interaction.callback_attempted_at = now
        try:
            return await self._accept_callback(request, interaction, now)
        except _ApiError as refused:
            interaction.refusals.append({"status": refused.status, "body": refused.body})
            await self._changes.notify()
            raise

    async def _accept_callback(
        self, request: web.Request, interaction: FakeInteraction, now: float
    ) -> web.StreamResponse:
        if now - interaction.created_at > self.interaction_deadline:
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.responded_at is not None:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        payload, uploads = await self._read_message_body(request)
        callback_type = payload.get("type")
        data = payload.get("data") or {}
        message: JSON | None = None
        autocompleting = interaction.type == APPLICATION_COMMAND_AUTOCOMPLETE
        if autocompleting != (callback_type == APPLICATION_COMMAND_AUTOCOMPLETE_RESULT):
            # Discord: choices answer only an autocomplete, and an autocomplete only choices.
            raise _form_error(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid response type."
            )
        if autocompleting:
            assert interaction.focused_option is not None
            _check_autocomplete_choices(interaction.focused_option, data)
        elif callback_type == CHANNEL_MESSAGE_WITH_SOURCE:
            _check_new_message(data, uploads)
            message = self._message(
                interaction.channel_id, data, uploads, interaction=interaction, message_type=20
            )
        elif callback_type == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            message = self._message(
                interaction.channel_id,
                {"flags": data.get("flags", 0)},
                [],
                interaction=interaction,
                message_type=20,
                extra_flags=LOADING,
            )
        elif callback_type == MODAL and interaction.type in (
            MESSAGE_COMPONENT,
            APPLICATION_COMMAND,
        ):
            _check_modal(data)
        elif callback_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and (
            interaction.type in (MESSAGE_COMPONENT, MODAL_SUBMIT) and interaction.message
        ):
            # Discord: only an interaction on a message may update it; the update is the
            # message as edited, which stays the one the member sees.
            message = copy.deepcopy(interaction.message)
            if callback_type == UPDATE_MESSAGE:
                _check_message_limits(data)
                message = self._edit(message, data, uploads)
        else:
            # Discord: a modal answers a command or a component, never a modal's own submit.
            raise _form_error(
                ["type"], "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid response type."
            )
        interaction.responded_at = now
        if message is not None:
            interaction.original_message_id = message["id"]
            interaction.messages[message["id"]] = message
        interaction.record(
            {
                "kind": "callback",
                **payload,
                "attachments": uploads,
                "message": copy.deepcopy(message),
            },
            at=now,
        )
        await self._changes.notify()
        if not _is_true(request.query.get("with_response")):
            return web.Response(status=204)
        answer: JSON = {"id": str(interaction.id), "type": interaction.type}
        resource: JSON = {"type": callback_type}
        if message is not None:
            answer.update(
                response_message_id=message["id"],
                response_message_loading=bool(message["flags"] & LOADING),
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )
            resource["message"] = message
        return _json_response({"interaction": answer, "resource": resource})

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction:
        if request.match_info["token"] in self._expired_tokens:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        interaction = self._interactions.get(request.match_info["token"])
        if (
            int(request.match_info["application_id"]) != self.application_id
            or interaction is None
            or interaction.responded_at is None
            # Choices make no message: an autocomplete has no webhook to follow up on.
            or interaction.type == APPLICATION_COMMAND_AUTOCOMPLETE
        ):
            raise _ApiError(404, 10015, "Unknown Webhook")
        return interaction

    def _webhook_message(self, request: web.Request, interaction: FakeInteraction) -> JSON:
        message_id = request.match_info["message_id"]
        if message_id == "@original":
            message_id = interaction.original_message_id or ""
        message = interaction.messages.get(message_id)
        if message is None:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    async def _post_followup(self, request: web.Request) -> web.StreamResponse:
        interaction = self._webhook_interaction(request)
        payload, uploads = await self._read_message_body(request)
        _check_new_message(payload, uploads)
        original = interaction.messages.get(interaction.original_message_id or "")
        if original is not None and original["flags"] & LOADING:
            # Discord: a followup right after a deferral edits the loading message instead.
            message = self._edit(original, payload, uploads)
        else:
            message = self._message(
                interaction.channel_id, payload, uploads, interaction=interaction
            )
            interaction.messages[message["id"]] = message
        interaction.record(
            {
                "kind": "followup",
                **payload,
                "attachments": uploads,
                "message": copy.deepcopy(message),
            }
        )
        await self._changes.notify()
        if _is_true(request.query.get("wait")):
            return _json_response(message)
        return web.Response(status=204)

    async def _get_webhook_message(self, request: web.Request) -> web.StreamResponse:
        interaction = self._webhook_interaction(request)
        return _json_response(self._webhook_message(request, interaction))

    async def _patch_webhook_message(self, request: web.Request) -> web.StreamResponse:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(request, interaction)
        payload, uploads = await self._read_message_body(request)
        _check_message_limits(payload)
        message = self._edit(message, payload, uploads)
        interaction.record(
            {"kind": "edit", **payload, "attachments": uploads, "message": copy.deepcopy(message)}
        )
        await self._changes.notify()
        return _json_response(message)

    async def _delete_webhook_message(self, request: web.Request) -> web.StreamResponse:
        interaction = self._webhook_interaction(request)
        message = self._webhook_message(request, interaction)
        del interaction.messages[message["id"]]
        interaction.record({"kind": "delete", "message": copy.deepcopy(message)})
        await self._changes.notify()
        return web.Response(status=204)

    def _edit(self, message: JSON, payload: JSON, uploads: Sequence[JSON]) -> JSON:
        """Apply an edit as Discord does: given fields replace, ``attachments`` lists the ones to
        keep, new files are added; a loading (deferred) message becomes a normal one."""
        channel_id = int(message["channel_id"])
        if "content" in payload:
            message["content"] = payload["content"] or ""
            users, roles, everyone = _mentions(payload)
            message.update(
                mentions=[self._user(user) for user in users],
                mention_roles=roles,
                mention_everyone=everyone,
            )
        if "embeds" in payload:
            message["embeds"] = [{"type": "rich", **embed} for embed in payload["embeds"] or []]
        if "components" in payload:
            message["components"] = payload["components"] or []
        kept = message["attachments"]
        if "attachments" in payload:
            keep = {str(entry.get("id")) for entry in payload["attachments"] or []}
            kept = [attachment for attachment in kept if attachment["id"] in keep]
        message["attachments"] = kept + [self._attachment(channel_id, item) for item in uploads]
        if message["flags"] & LOADING:
            # The deferral's flags stay (an existing message cannot become ephemeral or not).
            message["flags"] &= ~LOADING
        else:
            message["edited_timestamp"] = _now_iso()
        return message

    # -- gateway -----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        encoding = request.query.get("encoding", "json")
        compress = request.query.get("compress")
        if encoding != "json" or compress not in (None, "zlib-stream"):
            # discord.py asks for zstd-stream when `zstandard` or Python 3.14's compression.zstd
            # is importable; refuse loudly rather than send frames it cannot read.
            raise _ApiError(
                400, 0, f"fake gateway speaks json and zlib-stream, not {encoding}/{compress}"
            )
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        connection = _Connection(ws, zlib_stream=compress is not None)
        self._connections.add(connection)
        try:
            hello = {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["fake-gateway"]}
            await connection.send({"op": 10, "d": hello, "s": None, "t": None})
            async for frame in ws:
                payload = _decode_frame(frame)
                if payload is None:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                await self._gateway_op(connection, payload)
        finally:
            self._connections.discard(connection)
            session = connection.session
            if session is not None and session.connection is connection:
                session.connection = None
        return ws

    async def _gateway_op(self, connection: _Connection, payload: JSON) -> None:
        op, data = payload.get("op"), payload.get("d")
        if op == 1:
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data or {})
        elif op == 6:
            await self._resume(connection, data or {})
        elif op in (3, 4, 8):
            # Presence, voice state and member requests change nothing the fake models.
            if connection.session is None:
                await connection.ws.close(code=4003, message=b"Not authenticated.")
        else:
            await connection.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, connection: _Connection, data: JSON) -> None:
        if connection.session is not None:
            await connection.ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = _Session(id=secrets.token_hex(16), connection=connection)
        connection.session = session
        self._sessions[session.id] = session
        self._session = session
        ready: JSON = {
            "v": 10,
            "user": {**self._user(self.bot_user_id), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(guild), "unavailable": True} for guild in self.guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "_trace": ["fake-gateway"],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch(session, "READY", ready)
        if data.get("intents", 0) & GUILDS_INTENT:
            for guild_id in self.guild_ids:
                await self._dispatch(session, "GUILD_CREATE", self._guild_create(guild_id))
        self._ready_count += 1
        await self._changes.notify()

    async def _resume(self, connection: _Connection, data: JSON) -> None:
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = self._sessions.get(data.get("session_id") or "")
        if session is None:
            await connection.send({"op": 9, "d": False, "s": None, "t": None})
            return
        connection.session = session
        session.connection = connection
        for payload in session.sent[data.get("seq") or 0 :]:
            await connection.send(payload)
        await self._dispatch(session, "RESUMED", {"_trace": ["fake-gateway"]})

    async def _dispatch(self, session: _Session, event: str, data: JSON) -> None:
        payload = {"op": 0, "t": event, "s": len(session.sent) + 1, "d": data}
        session.sent.append(payload)
        connection = session.connection
        if connection is not None:
            # A connection that is going away: the dispatch is replayed on RESUME.
            with contextlib.suppress(ConnectionResetError):
                await connection.send(payload)


@contextlib.contextmanager
def point_discord_py_at(fake: FakeDiscord) -> Iterator[None]:
    """Send discord.py's REST calls and gateway connections to the fake, then restore them."""
    with point_discord_py_to(fake.base_url, fake.gateway_url):
        yield


@contextlib.contextmanager
def point_discord_py_to(base_url: str, gateway_url: str) -> Iterator[None]:
    """The same for a fake known only by its URLs (one serving from another process)."""
    route_base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = f"{base_url}{API_PREFIX}"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = route_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@contextlib.asynccontextmanager
async def running_fake_discord(**options: Any) -> AsyncIterator[FakeDiscord]:
    """A started fake with discord.py pointed at it, for ``async with`` or a pytest fixture."""
    async with FakeDiscord(**options) as fake:
        with point_discord_py_at(fake):
            yield fake
